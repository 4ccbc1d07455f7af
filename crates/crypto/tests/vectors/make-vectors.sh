#!/usr/bin/env bash
# Regenerates the test vectors in this directory (and layouts/) with the openssl CLI and
# sha256sum/sha1sum/md5sum, not with polyseal, so the vectors check our code against an
# implementation nobody here wrote.
#
# Each vector is one TOML file: `description`, the `key` string to decrypt with, the file as
# `header` (text, line ending included) plus `body_hex` (IV then ciphertext), and `expect`:
# "ok" (then `plaintext_hex`) or the kebab-case name of the error polyseal must return.
# Run from anywhere: bash crates/crypto/tests/vectors/make-vectors.sh
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

K1=06a9214036b8a15b512e03d534120006   # the key from the SoundPoint IP admin guide example
K2=c286696d887c9aa0611bbb3e2025a45a   # a different key
IV=3dafba429d9eb430b422da802c9fac41   # fixed here so the vectors are reproducible

hexof() { od -An -v -tx1 "$1" | tr -d ' \n'; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
enc() { openssl enc -aes-128-cbc -K "$1" -iv "$IV" -in "$2" -out "$3"; }
# body CIPHERTEXT OUT: the file body is the IV's 16 bytes, then the ciphertext.
body() { { printf "$(printf '%s' "$IV" | sed 's/../\\x&/g')"; cat "$1"; } > "$2"; }

# write NAME DESCRIPTION KEYSTRING HEADER BODYFILE EXPECT [PLAINTEXTFILE]
write() {
    local name=$1 desc=$2 key=$3 header=$4 body=$5 expect=$6 pt=${7:-}
    {
        echo "description = \"$desc\""
        echo "key = \"$key\""
        echo "header = \"$header\""
        echo "body_hex = \"$(hexof "$body")\""
        echo "expect = \"$expect\""
        if [ -n "$pt" ]; then echo "plaintext_hex = \"$(hexof "$pt")\""; fi
    } > "$name.toml"
}

printf '<?xml version="1.0" encoding="UTF-8"?>\n<polycomConfig>\n  <reg reg.1.address="1001" reg.1.auth.password="correct horse battery staple"/>\n</polycomConfig>\n' > "$tmp/pt"
printf '' > "$tmp/empty"
enc $K1 "$tmp/pt" "$tmp/ct"; body "$tmp/ct" "$tmp/body"
D=$(sha "$tmp/pt")
good="Crypt=1;KeyDesc=vec-k1;Digest=$D;\\n"

write good "A file sealed correctly decrypts to the plaintext" \
    "Crypt=1;KeyDesc=vec-k1;Key=$K1;" "$good" "$tmp/body" ok "$tmp/pt"

write crlf-header "A header ended by CRLF is not in the default layout (eol=lf): the line ending is matched exactly" \
    "Crypt=1;KeyDesc=vec-k1;Key=$K1;" "Crypt=1;KeyDesc=vec-k1;Digest=$D;\\r\\n" "$tmp/body" layout-mismatch

write fields-reordered "Header fields in another order, no trailing ';', upper-case hex digest" \
    "Crypt=1;KeyDesc=vec-k1;Key=$K1;" "Digest=${D^^};KeyDesc=vec-k1;Crypt=1\\n" "$tmp/body" ok "$tmp/pt"

write no-keydesc "A header without KeyDesc decrypts with any KeyDesc (the key decides)" \
    "Crypt=1;KeyDesc=whatever;Key=$K1;" "Crypt=1;Digest=$D;\\n" "$tmp/body" ok "$tmp/pt"

# A wrong key: openssl must fail on the padding too, so the expectation is not our opinion.
if openssl enc -d -aes-128-cbc -K $K2 -iv $IV -in "$tmp/ct" -out /dev/null 2>/dev/null; then
    echo "K2 happens to give valid padding; pick another K2" >&2; exit 1
fi
write wrong-key "The right KeyDesc but the wrong key: padding check fails" \
    "Crypt=1;KeyDesc=vec-k1;Key=$K2;" "$good" "$tmp/body" bad-padding

write keydesc-mismatch "The key offered has another KeyDesc than the file's header" \
    "Crypt=1;KeyDesc=vec-k2;Key=$K1;" "$good" "$tmp/body" key-desc-mismatch

# Flip one bit in the first ciphertext block: block 1 decrypts to garbage, the padding (last
# block) is intact, so only the digest can catch it.
cp "$tmp/body" "$tmp/flip"
byte=$(od -An -tu1 -j16 -N1 "$tmp/flip" | tr -d ' ')
printf "$(printf '\\x%02x' $((byte ^ 1)))" | dd of="$tmp/flip" bs=1 seek=16 conv=notrunc status=none
write flipped-body-bit "One bit flipped in the first ciphertext block" \
    "Crypt=1;KeyDesc=vec-k1;Key=$K1;" "$good" "$tmp/flip" digest-mismatch

first=${D:0:1}; flipped=$(printf '%x' $(( 0x$first ^ 1 )))
write flipped-digest-bit "One bit flipped in the header's digest" \
    "Crypt=1;KeyDesc=vec-k1;Key=$K1;" "Crypt=1;KeyDesc=vec-k1;Digest=$flipped${D:1};\\n" "$tmp/body" digest-mismatch

head -c 20 "$tmp/body" > "$tmp/short"
write truncated-body "Body cut to 20 bytes: less than an IV and one block" \
    "Crypt=1;KeyDesc=vec-k1;Key=$K1;" "$good" "$tmp/short" truncated-body

head -c $(( $(stat -c %s "$tmp/body") - 5 )) "$tmp/body" > "$tmp/unaligned"
write body-not-block-aligned "Body lost its last 5 bytes: not a whole number of blocks" \
    "Crypt=1;KeyDesc=vec-k1;Key=$K1;" "$good" "$tmp/unaligned" body-not-block-aligned

# 16 bytes ending in 0x00 encrypted without padding: never valid PKCS#7.
printf 'no padding here\0' > "$tmp/nopad"
openssl enc -aes-128-cbc -nopad -K $K1 -iv $IV -in "$tmp/nopad" -out "$tmp/nopad.ct"
body "$tmp/nopad.ct" "$tmp/nopad.body"
write bad-padding "The right key, but the last block's PKCS#7 padding is invalid" \
    "Crypt=1;KeyDesc=vec-k1;Key=$K1;" "Crypt=1;KeyDesc=vec-k1;Digest=$(sha "$tmp/nopad");\\n" "$tmp/nopad.body" bad-padding

write crypt-2 "Crypt=2 is not a format we know" \
    "Crypt=1;KeyDesc=vec-k1;Key=$K1;" "Crypt=2;KeyDesc=vec-k1;Digest=$D;\\n" "$tmp/body" unsupported-crypt

write md5-digest "An MD5 digest is not the default layout's (digest=sha256): refused, read in a layout with digest=md5" \
    "Crypt=1;KeyDesc=vec-k1;Key=$K1;" "Crypt=1;KeyDesc=vec-k1;Digest=$(md5sum "$tmp/pt" | cut -d' ' -f1);\\n" "$tmp/body" unsupported-digest

write not-encrypted "Plain XML is not an encrypted file" \
    "Crypt=1;KeyDesc=vec-k1;Key=$K1;" '<?xml version=\"1.0\"?>\n' "$tmp/empty" not-encrypted

write malformed-header "A header that names Crypt but has no Digest" \
    "Crypt=1;KeyDesc=vec-k1;Key=$K1;" "Crypt=1;KeyDesc=vec-k1;\\n" "$tmp/body" malformed-header

enc $K1 "$tmp/empty" "$tmp/empty.ct"
body "$tmp/empty.ct" "$tmp/empty.body"
write empty-plaintext "An empty plaintext: IV plus one block of padding" \
    "Crypt=1;KeyDesc=vec-k1;Key=$K1;" "Crypt=1;KeyDesc=vec-k1;Digest=$(sha "$tmp/empty");\\n" "$tmp/empty.body" ok "$tmp/empty"

echo "wrote $(ls ./*.toml | wc -l) vectors"

# Every layout (docs/FORMAT.md, "Layouts"): the same plaintext sealed in each of the 72, one
# file per layout in layouts/, as `file_hex` (the whole file) with its key, plaintext and
# layout. The plaintext is not a whole number of blocks and does not end in a zero byte, so
# exactly one layout fits each file.
mkdir -p layouts; rm -f layouts/*.toml
ZERO=00000000000000000000000000000000
for iv in prefix zero header; do
  for digest in sha256 sha1 md5; do
    for padding in pkcs7 zero; do
      for body in raw base64; do
        for eol in lf crlf; do
          name="iv-$iv.digest-$digest.padding-$padding.body-$body.eol-$eol"
          layout="iv=$iv digest=$digest padding=$padding body=$body eol=$eol"
          d=$(${digest}sum "$tmp/pt" | cut -d' ' -f1)
          iv_hex=$IV; [ "$iv" = zero ] && iv_hex=$ZERO
          cp "$tmp/pt" "$tmp/in"
          if [ "$padding" = pkcs7 ]; then
            openssl enc -aes-128-cbc -K $K1 -iv "$iv_hex" -in "$tmp/in" -out "$tmp/ct"
          else
            truncate -s %16 "$tmp/in"
            openssl enc -aes-128-cbc -nopad -K $K1 -iv "$iv_hex" -in "$tmp/in" -out "$tmp/ct"
          fi
          if [ "$iv" = prefix ]; then body "$tmp/ct" "$tmp/raw"; else cp "$tmp/ct" "$tmp/raw"; fi
          header="Crypt=1;KeyDesc=vec-k1;Digest=$d;"
          [ "$iv" = header ] && header="${header}IV=$IV;"
          nl='\n'; [ "$eol" = crlf ] && nl='\r\n'
          printf "%s$nl" "$header" > "$tmp/file"
          if [ "$body" = raw ]; then
            cat "$tmp/raw" >> "$tmp/file"
          else
            # openssl base64 writes lines of 64 characters, each ended by \n.
            openssl base64 -in "$tmp/raw" | if [ "$eol" = crlf ]; then sed 's/$/\r/'; else cat; fi >> "$tmp/file"
          fi
          {
            echo "description = \"The plaintext sealed by openssl in $layout\""
            echo "key = \"Crypt=1;KeyDesc=vec-k1;Key=$K1;\""
            echo "layout = \"$layout\""
            echo "file_hex = \"$(hexof "$tmp/file")\""
            echo "plaintext_hex = \"$(hexof "$tmp/pt")\""
          } > "layouts/$name.toml"
        done
      done
    done
  done
done
echo "wrote $(ls layouts/*.toml | wc -l) layout vectors"
