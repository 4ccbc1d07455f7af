//! Counts in messages, read right: "1 warning", "3 warnings".

/// `n` and `noun`, the noun in the plural unless `n` is 1 (`noun` is a singular English noun
/// phrase whose plural adds `s` to its last word: "key file", "active key").
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(count(1, "warning"), "1 warning");
        assert_eq!(count(0, "warning"), "0 warnings");
        assert_eq!(count(2, "active key"), "2 active keys");
    }
}
