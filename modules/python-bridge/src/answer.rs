//! What a library's answer becomes before the bridge ranks it: the rows it
//! names, each once.

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

#[cfg(test)]
mod tests {
    use super::*;

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
