//! [`NameTable`] against a `HashMap` over the same keys.

use std::collections::HashMap;

use proptest::collection::vec;
use proptest::prelude::*;

use super::*;

/// Names that share their first and last bytes, lengths around the window sizes (3, 4, 8,
/// 16, 17) and a small alphabet, so that names differing in one byte are common.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ab]{0,20}",
        proptest::sample::select(vec![
            "aaaaaaaaa",
            "aaaaaaaaaa",
            "abcdefgh12345678",
            "abcdefghX2345678",
            "abcdefgh1X2345678",
            "abcdefgh1Y2345678",
            "abcd",
            "abcda",
            "abc",
        ])
        .prop_map(str::to_string),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]
    /// Inserts, look-ups and first insertions give what a `HashMap` gives, through the
    /// table's growth (it starts with two slots).
    #[test]
    fn a_name_table_answers_as_a_hash_map(ops in vec((0..3u64, name(), any::<u8>(), 0..3), 0..120)) {
        let mut table = NameTable::with_capacity(1);
        let mut model: HashMap<(u64, &str), u8> = HashMap::new();
        for (number, name, value, op) in &ops {
            let (number, value) = (*number << 31, *value);
            match op {
                0 => {
                    table.insert(number, name, value);
                    model.insert((number, name), value);
                }
                1 => {
                    let had = *table.get_or_insert(number, name, value);
                    prop_assert_eq!(had, *model.entry((number, name)).or_insert(value));
                }
                _ => prop_assert_eq!(table.get(number, name), model.get(&(number, name.as_str())).copied()),
            }
            prop_assert_eq!(table.len(), model.len());
        }
        for ((number, name), value) in &model {
            prop_assert_eq!(table.get(*number, name), Some(*value));
        }
    }

    /// Two names of at most 16 bytes have the same key exactly when they are the same name:
    /// the table compares nothing else for them.
    #[test]
    fn short_names_have_keys_of_their_own(a in name(), b in name(), number in 0..2u64) {
        if a.len() <= SHORT && b.len() <= SHORT {
            prop_assert_eq!(key(number, &a) == key(number, &b), a == b);
        }
        prop_assert_ne!(key(0, &a), key(1, &a));
    }
}
