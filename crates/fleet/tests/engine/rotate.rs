use crate::common::{Fleet, PHONES, later};
use polyseal_crypto::Mac;
use polyseal_fleet::rotate::{self, Note, Targets};
use polyseal_fleet::{Error, NoProgress};
use polyseal_vault::{InitialState, RotationStep};

fn mac(text: &str) -> Mac {
    Mac::parse(text).expect("MAC")
}

#[test]
fn start_takes_every_steady_phone_and_refuses_one_already_rotating() {
    let fleet = Fleet::new();
    fleet.publish_at(later(), &NoProgress).expect("publish");
    let (mut writer, data_key) = fleet.writer();
    let all = rotate::start_targets(writer.vault(), Targets::All).expect("targets");
    assert_eq!(all.len(), 3);

    let first = [mac(PHONES[0])];
    writer
        .add_keys(&data_key, &first, InitialState::PreActive)
        .expect("start");
    assert_eq!(
        RotationStep::of(writer.vault().record(&first[0])),
        RotationStep::Started { active: 1, next: 2 }
    );
    let error = rotate::start_targets(writer.vault(), Targets::Named(&first))
        .expect_err("a rotating phone is refused");
    assert!(matches!(error, Error::RotationUnderWay { .. }), "{error:?}");
    let rest = rotate::start_targets(writer.vault(), Targets::All).expect("targets");
    assert_eq!(rest.len(), 2, "--all leaves the rotating phone out");
}

#[test]
fn start_refuses_a_phone_without_a_key() {
    let fleet = Fleet::new();
    let (writer, _) = fleet.writer();
    let unknown = [mac("0004f2ffffff")];
    let error = rotate::start_targets(writer.vault(), Targets::Named(&unknown))
        .expect_err("no key to rotate from");
    assert!(matches!(error, Error::NothingToRotate { .. }), "{error:?}");
}

#[test]
fn finish_needs_a_confirmation_and_then_swaps_the_generations() {
    let fleet = Fleet::new();
    fleet.publish_at(later(), &NoProgress).expect("publish");
    let (mut writer, data_key) = fleet.writer();
    let phone = [mac(PHONES[1])];
    writer
        .add_keys(&data_key, &phone, InitialState::PreActive)
        .expect("start");
    let error = rotate::finish_changes(writer.vault(), Targets::Named(&phone))
        .expect_err("not confirmed yet");
    assert!(matches!(error, Error::CannotFinish { .. }), "{error:?}");

    let mut notes = Vec::new();
    let confirmations = rotate::confirm(writer.vault(), Some(&phone), None, &mut |n| notes.push(n))
        .expect("operator confirms");
    assert_eq!(confirmations.len(), 1);
    assert!(notes.is_empty());
    writer.confirm(&data_key, &confirmations).expect("commit");
    let again =
        rotate::confirm(writer.vault(), Some(&phone), None, &mut |n| notes.push(n)).expect("again");
    assert!(again.is_empty());
    assert_eq!(
        notes,
        vec![Note::Detail(format!("{}: already confirmed", PHONES[1]))]
    );

    let changes = rotate::finish_changes(writer.vault(), Targets::All).expect("finish");
    assert_eq!(
        changes.len(),
        2,
        "old generation deactivated, new one activated"
    );
    writer.set_states(&data_key, &changes).expect("commit");
    assert_eq!(
        RotationStep::of(writer.vault().record(&phone[0])),
        RotationStep::Steady { active: 2 }
    );
}

#[test]
fn confirm_without_phones_or_uploads_is_refused() {
    let fleet = Fleet::new();
    let (writer, _) = fleet.writer();
    let error =
        rotate::confirm(writer.vault(), None, None, &mut |_| {}).expect_err("nothing to go on");
    assert!(matches!(error, Error::NothingNamedToConfirm), "{error:?}");
}
