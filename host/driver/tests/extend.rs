//! The event decoder's counter extension: 16-bit sequence numbers and 32-bit
//! microsecond stamps become 64-bit values with every gap counted, across wraps.

use proptest::prelude::*;
use pynq_mqtt_driver::{Clock64, Seq64};

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn sequence_numbers_extend_and_gaps_are_counted(
        start in any::<u64>().prop_map(|s| s % (1 << 40)),
        gaps in proptest::collection::vec(prop_oneof![4 => Just(0u64), 1 => 0u64..65_535], 1..400),
    ) {
        let mut s = Seq64::default();
        let (first, g0) = s.accept(start as u16);
        prop_assert_eq!(g0, 0);
        let mut true_seq = first;
        let mut lost = 0;
        for g in gaps {
            true_seq += g + 1;
            let (seq, gap) = s.accept(true_seq as u16);
            prop_assert_eq!(seq, true_seq);
            prop_assert_eq!(gap, g);
            lost += gap;
        }
        prop_assert_eq!(true_seq - first, lost + (true_seq - first - lost));
    }

    #[test]
    fn stamps_extend_across_wraps(
        start in any::<u32>(),
        steps in proptest::collection::vec((0u64..(1 << 31), -(1i64 << 30)..(1i64 << 30)), 1..300),
    ) {
        let mut c = Clock64::new(start);
        let mut now = u64::from(start);
        for (advance, offset) in steps {
            now += advance;
            prop_assert_eq!(c.update(now as u32), now);
            // a stamp within half a wrap of the reading, before or after it
            let stamp = now.saturating_add_signed(offset);
            prop_assert_eq!(c.extend(stamp as u32), stamp);
        }
    }
}
