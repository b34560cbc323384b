//! Vamana's occlusion pruning and the medoid entry point.

use annvil_abi::Metric;
use annvil_beam::Space;
use annvil_core::Candidate;

/// RobustPrune (Subramanya et al. 2019, Algorithm 2): chooses at most
/// `max_degree` out-neighbours of a base point `p` from `pool`.
///
/// `pool` holds candidates with their distance to `p`, sorted closest
/// first, ids unique and `p` itself absent. Walking it from the closest, a
/// candidate `c` is kept unless some neighbour `k` kept before it occludes
/// it: `alpha · d(k, c) < d(p, c)` (ties keep `c`, so duplicates of `p`
/// stay linked). With `alpha = 1` this is the RNG-style rule of HNSW's
/// heuristic; a larger `alpha` occludes less, keeping longer edges that
/// shorten search paths. The distances are the metric's own (the squared
/// distance for L2, as DiskANN does). A negative distance (inner product)
/// is scaled the other way, `d(k, c) < alpha · d(p, c)`, so that a larger
/// `alpha` still occludes less (DiskANN's rule for MIPS).
/// `kept` receives the chosen neighbours, closest first.
pub fn robust_prune(
    space: &Space<'_>,
    pool: &[Candidate],
    alpha: f32,
    max_degree: usize,
    kept: &mut Vec<Candidate>,
) {
    kept.clear();
    for &candidate in pool {
        if kept.len() >= max_degree {
            break;
        }
        let occluding = if candidate.distance >= 0.0 {
            candidate.distance / alpha
        } else {
            candidate.distance * alpha
        };
        if kept
            .iter()
            .all(|k| space.between(k.id, candidate.id) >= occluding)
        {
            kept.push(candidate);
        }
    }
}

/// The medoid entry point: the base vector nearest (in Euclidean distance,
/// whatever the metric, as DiskANN does) to the mean of all base vectors;
/// `None` for an empty base. Ties go to the lower id.
pub fn medoid(space: &Space<'_>) -> Option<u32> {
    if space.is_empty() {
        return None;
    }
    let mut sum = vec![0f64; space.dim()];
    for id in 0..space.len() as u32 {
        for (total, &x) in sum.iter_mut().zip(space.row(id)) {
            *total += f64::from(x);
        }
    }
    let count = space.len() as f64;
    let mean: Vec<f32> = sum.iter().map(|&total| (total / count) as f32).collect();
    let l2 = annvil_distance::kernel(Metric::L2);
    (0..space.len() as u32)
        .map(|id| Candidate {
            distance: l2.distance(&mean, space.row(id)),
            id,
        })
        .min()
        .map(|closest| closest.id)
}

#[cfg(test)]
mod tests {
    use annvil_abi::Vectors;

    use super::*;

    fn sorted_pool(space: &Space<'_>, p: u32) -> Vec<Candidate> {
        let mut pool: Vec<Candidate> = (0..space.len() as u32)
            .filter(|&id| id != p)
            .map(|id| Candidate {
                distance: space.between(p, id),
                id,
            })
            .collect();
        pool.sort_unstable();
        pool
    }

    #[test]
    fn occlusion_depends_on_alpha() {
        // p = 0 at the origin; 1 and 2 on the same ray, 3 opposite.
        let data = [0.0f32, 1.0, 1.5, -1.0];
        let space = Space::new(Vectors::new(&data, 1).unwrap(), Metric::L2);
        let pool = sorted_pool(&space, 0);
        let mut kept = Vec::new();

        // d(0,2) = 2.25 and d(1,2) = 0.25: occluded unless alpha > 9.
        robust_prune(&space, &pool, 1.0, 8, &mut kept);
        let ids: Vec<u32> = kept.iter().map(|c| c.id).collect();
        assert_eq!(ids, [1, 3]);
        robust_prune(&space, &pool, 10.0, 8, &mut kept);
        let ids: Vec<u32> = kept.iter().map(|c| c.id).collect();
        assert_eq!(ids, [1, 3, 2]);
        // The degree bound cuts the walk short.
        robust_prune(&space, &pool, 10.0, 1, &mut kept);
        assert_eq!(kept.len(), 1);
    }

    #[test]
    fn alpha_relaxes_negative_distances_too() {
        // Inner product: p = 0; c = 2 is p's best match, k = 1 is kept
        // first and c's own best match.
        let data = [1.0f32, 0.0, 2.0, 0.0, 1.9, 0.3];
        let space = Space::new(Vectors::new(&data, 2).unwrap(), Metric::InnerProduct);
        let pool = sorted_pool(&space, 0);
        assert_eq!(pool[0].id, 1);
        let mut kept = Vec::new();
        // d(0,2) = -1.9, d(1,2) = -3.8: occluded at alpha 1 and 1.5,
        // kept from alpha 2 on.
        for (alpha, count) in [(1.0, 1), (1.5, 1), (2.5, 2)] {
            robust_prune(&space, &pool, alpha, 8, &mut kept);
            assert_eq!(kept.len(), count, "alpha {alpha}");
        }
    }

    #[test]
    fn medoid_is_the_point_nearest_the_mean() {
        let data = [0.0f32, 0.0, 10.0, 0.0, 0.0, 10.0, 3.0, 3.0];
        let space = Space::new(Vectors::new(&data, 2).unwrap(), Metric::L2);
        assert_eq!(medoid(&space), Some(3));
        let empty = Space::new(Vectors::new(&[], 2).unwrap(), Metric::L2);
        assert_eq!(medoid(&empty), None);
    }
}
