//! Warnings that repeat across a fleet, said once with a count and the first examples: a fleet
//! of 10,000 phones with weak SIP passwords gets one line, not 10,000 (issue 12, point 10).

use std::collections::BTreeMap;
use std::mem::discriminant;

use polyseal_provision::Finding;

/// How many places a grouped warning names before it says how many more there are.
pub(super) const EXAMPLES: usize = 5;

/// One warning per finding while there are at most [`EXAMPLES`] of a kind; beyond that, one
/// warning for the kind: the first finding in full, then the places of the next ones and how
/// many more there are.
pub(super) fn grouped_findings(findings: Vec<Finding>) -> Vec<String> {
    let mut kinds: Vec<Vec<Finding>> = Vec::new();
    let mut index = BTreeMap::new();
    for finding in findings {
        // Grouped by what is wrong (not by its detail, such as which weakness): one fix.
        let key = format!("{:?}", discriminant(&finding.kind));
        let at = *index.entry(key).or_insert_with(|| {
            kinds.push(Vec::new());
            kinds.len() - 1
        });
        kinds[at].push(finding);
    }
    let mut warnings = Vec::new();
    for group in kinds {
        if group.len() <= EXAMPLES {
            warnings.extend(group.iter().map(ToString::to_string));
            continue;
        }
        let places: Vec<String> = group[1..=EXAMPLES]
            .iter()
            .map(|f| format!("{}:{} {}", f.file.display(), f.position, f.parameter))
            .collect();
        warnings.push(format!(
            "{} findings like this one: {} (also {}{})",
            group.len(),
            group[0],
            places.join(", "),
            and_more(group.len() - 1, EXAMPLES)
        ));
    }
    warnings
}

/// ", and N more" after the first `shown` of `total`.
pub(super) fn and_more(total: usize, shown: usize) -> String {
    if total > shown {
        format!(", and {} more", total - shown)
    } else {
        String::new()
    }
}
