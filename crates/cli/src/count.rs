//! Counts in messages: one definition, in polyseal-fleet (its errors count too).

pub(crate) use polyseal_fleet::count;
