//! Test helpers shared by the one-level graph constructions (annvil-vamana
//! and annvil-nndescent, which includes this file by path): beam search
//! over a built graph scored against exact search, and the invariants of a
//! [`FrozenGraph`]. The setup every module shares is in annvil-testkit.

use annvil_abi::{Base, GraphView, Metric};
use annvil_beam::{BeamSearch, NativeGraph, Space, StandardGraph};
use annvil_core::Links;
use annvil_testkit::{Truth, search_all};
use annvil_vamana::{FrozenGraph, medoid};

/// Recall@K at `ef`, against `truth`, of `BeamSearch<N>` on the native
/// graph of `native`, after checking that a search on the copied standard
/// view answers the same.
pub fn native_recall<N: NativeGraph>(
    native: &'static N,
    graph: &'static FrozenGraph,
    base: Base,
    metric: Metric,
    truth: &Truth<'_>,
    ef: usize,
) -> f64 {
    let data = truth.data();
    let view: &'static GraphView<'static> = Box::leak(Box::new(graph.view()));
    let mut borrowed =
        BeamSearch::<N>::from_view(base, view, metric, Some(native.level0())).unwrap();
    assert!(borrowed.uses_native_graph());
    let mut copied = BeamSearch::<StandardGraph>::from_view(base, view, metric, None).unwrap();
    let found = search_all(&mut borrowed, data, "ef", ef);
    assert_eq!(
        found,
        search_all(&mut copied, data, "ef", ef),
        "native and copied graphs differ"
    );
    truth.recall(&found)
}

/// Degree bound, no self loops or repeats, the view equal to the native
/// graph, the medoid as the first entry point, and every node reachable
/// (except under inner product, where a vector of small norm is nobody's
/// close neighbour, nor any query's answer).
pub fn check_invariants(graph: &FrozenGraph, space: &Space<'_>, metric: Metric, max_degree: usize) {
    let view = graph.view();
    view.validate(space.len()).unwrap();
    assert_eq!(view.levels.len(), 1);
    assert_eq!(graph.entry_points().first(), medoid(space).as_ref());
    for node in 0..view.num_nodes as u32 {
        let list = view.levels[0].neighbors_of(node);
        assert!(
            list.len() <= max_degree,
            "node {node}: degree {}",
            list.len()
        );
        assert_eq!(graph.level0().links(node), list);
        assert!(!list.contains(&node), "self loop at {node}");
        let mut sorted = list.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), list.len(), "repeated neighbour of {node}");
    }
    if metric != Metric::InnerProduct {
        let unreached = graph.reachable().iter().filter(|&&r| !r).count();
        assert_eq!(unreached, 0, "nodes unreachable from the medoid");
    }
}

/// True when two graphs have the same lists and entry points.
pub fn same_graph(a: &FrozenGraph, b: &FrozenGraph) -> bool {
    let (a, b) = (a.view(), b.view());
    a.entry_points == b.entry_points
        && a.levels[0].offsets == b.levels[0].offsets
        && a.levels[0].neighbors == b.levels[0].neighbors
}
