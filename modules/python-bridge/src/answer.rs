//! What a library's answer becomes before the bridge writes it: the rows it
//! names, each once, either to be ranked by exact distance (ids alone) or
//! in the library's own order with its own distances (ids and distances).

/// The base rows named by a library's `ids` (`-1` and other negative ids
/// mean "none"), sorted and each once: some libraries pad a short answer
/// with a repeated id, and an answer is a set of neighbours. When `k`
/// covers all `n` base vectors the answer is every row (graph libraries may
/// miss some at that size; no benchmark asks for it). An id past the base
/// is an error naming it.
#[cfg_attr(
    not(feature = "python"),
    allow(dead_code, reason = "the slots that use it need the python feature")
)]
pub(crate) fn distinct_rows(ids: &[i64], n: usize, k: usize) -> Result<Vec<u32>, String> {
    if k >= n {
        return Ok((0..n as u32).collect());
    }
    let mut rows = ids
        .iter()
        .filter(|&&id| id >= 0)
        .map(|&id| {
            u32::try_from(id)
                .ok()
                .filter(|&row| (row as usize) < n)
                .ok_or_else(|| format!("the adapter returned id {id}; there are {n} base vectors"))
        })
        .collect::<Result<Vec<u32>, String>>()?;
    rows.sort_unstable();
    rows.dedup();
    Ok(rows)
}

/// The (row, distance) pairs of a library's answer given with its own
/// distances (smaller closer; one per id, which the caller has checked), in
/// its order: `-1` and other negative ids mean "none", a repeated id counts
/// at its first place. Distances that are not finite or not in increasing
/// order, or an id past the `n` base vectors, are an error saying which.
#[cfg_attr(
    not(feature = "python"),
    allow(dead_code, reason = "the slots that use it need the python feature")
)]
pub(crate) fn ordered_pairs(
    ids: &[i64],
    distances: &[f32],
    n: usize,
) -> Result<Vec<(u32, f32)>, String> {
    let mut pairs: Vec<(u32, f32)> = Vec::with_capacity(ids.len());
    for (&id, &distance) in ids.iter().zip(distances) {
        if id < 0 {
            continue;
        }
        let row = u32::try_from(id)
            .ok()
            .filter(|&row| (row as usize) < n)
            .ok_or_else(|| format!("the adapter returned id {id}; there are {n} base vectors"))?;
        if !distance.is_finite() {
            return Err(format!(
                "the adapter returned distance {distance} for id {id}"
            ));
        }
        if pairs.last().is_some_and(|&(_, last)| distance < last) {
            return Err(format!(
                "the adapter returned distances out of order (id {id} at {distance} after {}); \
                 return them nearest first, smaller meaning closer",
                pairs.last().map_or(0.0, |&(_, last)| last)
            ));
        }
        if pairs.iter().all(|&(seen, _)| seen != row) {
            pairs.push((row, distance));
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_library_order_keeps_its_distances_and_drops_repeats_and_blanks() {
        assert_eq!(
            ordered_pairs(&[4, 2, 2, -1], &[0.5, 1.0, 1.0, f32::MAX], 10),
            Ok(vec![(4, 0.5), (2, 1.0)])
        );
    }

    #[test]
    fn a_library_order_out_of_order_or_not_finite_is_refused() {
        let error = ordered_pairs(&[1, 2], &[2.0, 1.0], 10).unwrap_err();
        assert!(
            error.contains("out of order (id 2 at 1 after 2)"),
            "{error}"
        );
        let error = ordered_pairs(&[1], &[f32::NAN], 10).unwrap_err();
        assert!(error.contains("distance NaN for id 1"), "{error}");
        let error = ordered_pairs(&[12], &[1.0], 10).unwrap_err();
        assert!(error.contains("id 12; there are 10"), "{error}");
    }

    #[test]
    fn repeated_and_missing_ids_count_once_or_not_at_all() {
        assert_eq!(
            distinct_rows(&[7, 0, 0, 0, -1, 3], 10, 5),
            Ok(vec![0, 3, 7])
        );
        assert_eq!(distinct_rows(&[], 10, 5), Ok(vec![]));
    }

    #[test]
    fn an_id_past_the_base_is_named() {
        let error = distinct_rows(&[1, 10], 10, 2).unwrap_err();
        assert!(
            error.contains("id 10; there are 10 base vectors"),
            "{error}"
        );
    }

    #[test]
    fn k_covering_the_base_answers_every_row() {
        assert_eq!(distinct_rows(&[2], 3, 3), Ok(vec![0, 1, 2]));
    }
}
