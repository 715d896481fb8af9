//! The LSD radix sort of [`super::finish`]'s packed keys (and of the status pass's keys:
//! [`radix_pass`]): a few linear passes over small integers instead of a comparison sort.

/// The low `low` bits of keys of `bits` significant bits (their index), in the order of the
/// keys' bits from `low` up (stable: keys equal there keep their order), by an LSD radix sort
/// of a digit of at most 11 bits at a time: a few linear passes instead of a comparison sort's
/// n log n. The digits are as wide as the passes need (40 bits: four passes of 10), and their
/// counts stay in cache. Keys already in the order of their `low` bits (an index) are sorted
/// without a pass over those. The last pass writes the indices (4 bytes) where the others move
/// keys (8): no pass is left to take the indices out of the sorted keys.
pub(in crate::translate) fn radix_sorted_low(mut keys: Vec<u64>, low: u32, bits: u32) -> Vec<u32> {
    assert!(low <= 32 && bits <= 64, "indices of at most 32 bits, keys of at most 64");
    let low_mask = u64::MAX.checked_shr(64 - low).unwrap_or(0);
    let passes = bits.saturating_sub(low).div_ceil(11) as usize;
    if passes == 0 {
        return keys.into_iter().map(|k| (k & low_mask) as u32).collect();
    }
    let width = (bits - low).div_ceil(passes as u32);
    let mask = (1u64 << width) - 1;
    let mut counts = vec![0usize; (1 << width) + 1];
    let mut buffer = vec![0u64; keys.len()];
    for pass in 0..passes as u32 - 1 {
        let shift = low + pass * width;
        radix_pass(&mut keys, &mut buffer, &mut counts, |k| ((k >> shift) & mask) as usize);
    }
    drop(buffer);
    // The last pass writes the index of each key where it goes.
    let shift = low + (passes as u32 - 1) * width;
    let mut indices = vec![0u32; keys.len()];
    radix_scatter(
        &keys,
        &mut indices,
        &mut counts,
        |k| ((k >> shift) & mask) as usize,
        |k| (k & low_mask) as u32,
    );
    indices
}

/// One stable pass of an LSD radix sort: `keys` in the order of their `digit` (each below
/// `counts.len() - 1`), through `buffer` (as long as `keys`; it holds the old order after).
#[inline]
pub(in crate::translate) fn radix_pass<T: Copy>(
    keys: &mut Vec<T>,
    buffer: &mut Vec<T>,
    counts: &mut [usize],
    digit: impl Fn(&T) -> usize,
) {
    radix_scatter(keys, buffer, counts, digit, |k| *k);
    std::mem::swap(keys, buffer);
}

/// The scatter of a radix pass: `value(k)` of each of `keys` written to `out` (as long as
/// `keys`) in the order of their `digit` (each below `counts.len() - 1`), stably.
#[inline]
fn radix_scatter<T, U>(
    keys: &[T],
    out: &mut [U],
    counts: &mut [usize],
    digit: impl Fn(&T) -> usize,
    value: impl Fn(&T) -> U,
) {
    counts.fill(0);
    for k in keys {
        counts[digit(k) + 1] += 1;
    }
    for i in 1..counts.len() {
        counts[i] += counts[i - 1];
    }
    for k in keys {
        let d = digit(k);
        out[counts[d]] = value(k);
        counts[d] += 1;
    }
}
