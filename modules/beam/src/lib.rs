//! Graph beam search, the search slot for any graph in the standard view.
//!
//! [`BeamSearch`] descends greedily through the upper levels from the entry
//! point, then runs an ef-bounded best-first search on level 0 (hnswlib's
//! query algorithm). It works on the [`GraphView`] of any construction
//! slot, from any library: at prepare time it copies level 0 into a compact
//! [`FixedDegree`] array, or borrows that array from the construction when
//! the construction is this library's own type `N` (see [`NativeGraph`]).
//!
//! The building blocks are public because graph construction needs the same
//! searches: [`LayerSearch`] (epoch-tagged [`VisitedSet`] plus reusable
//! heaps), [`greedy`], the [`Links`] abstraction over a graph level, and
//! [`Space`], the base vectors behind the single seam to the distance
//! kernels.

#![warn(missing_docs)]

mod layer;
mod space;
mod visited;

use std::borrow::Cow;
use std::marker::PhantomData;

use annvil_abi::{Base, Error, Graph, GraphView, Level, Metric, Neighbors, Params, Result, Search};

pub use layer::{Candidate, FixedDegree, LayerSearch, Links, Slot, counted, greedy};
pub use space::Space;
pub use visited::VisitedSet;

/// A construction whose graph [`BeamSearch`] can search without copying
/// level 0, when both slots come from the same library.
pub trait NativeGraph: Send + Sync + 'static {
    /// Level 0 in the fixed-stride layout, over all nodes.
    fn level0(&self) -> &FixedDegree;
}

/// The `N` of a [`BeamSearch`] that only reads the standard view. It has no
/// values, so no construction slot is ever of this type.
pub enum StandardGraph {}

impl NativeGraph for StandardGraph {
    fn level0(&self) -> &FixedDegree {
        match *self {}
    }
}

/// Default of the `ef` knob.
pub const DEFAULT_EF: usize = 10;

/// Beam search over a graph view; `N` is the construction whose native
/// graph it borrows when the host passes one (see [`NativeGraph`]).
///
/// Knob (swept): `ef`, the beam width on level 0 (default
/// [`DEFAULT_EF`]); a search for `n` results uses `max(ef, n)`. No prepare
/// parameters.
pub struct BeamSearch<N: NativeGraph = StandardGraph> {
    space: Space<'static>,
    level0: Cow<'static, FixedDegree>,
    /// Levels 1.., borrowed from the view.
    upper: Vec<Level<'static>>,
    entry_points: Vec<u32>,
    ef: usize,
    native: PhantomData<fn() -> N>,
}

/// Per-thread scratch of a [`BeamSearch`].
pub struct BeamContext {
    layer: LayerSearch,
    seeds: Vec<Candidate>,
    distances: u64,
}

impl<N: NativeGraph> BeamSearch<N> {
    /// A searcher over `base` and `view`. Level 0 is borrowed from
    /// `native` when given (it must cover every base vector), else copied
    /// from the view into a fixed-stride array.
    ///
    /// Fails with [`annvil_abi::Status::Unsupported`] when the view has no
    /// levels, and with an invalid-argument error when it is not a valid
    /// graph over `base`.
    pub fn from_view(
        base: Base,
        view: &GraphView<'static>,
        metric: Metric,
        native: Option<&'static FixedDegree>,
    ) -> Result<BeamSearch<N>> {
        let Some((level0, upper)) = view.levels.split_first() else {
            return Err(Error::unsupported(
                "beam search needs a graph, and the construction slot built none",
            ));
        };
        view.validate(base.len())?;
        let level0 = match native {
            Some(native) if native.num_nodes() == base.len() => Cow::Borrowed(native),
            _ => Cow::Owned(FixedDegree::from_level(level0, base.len())),
        };
        let entry_points = if view.entry_points.is_empty() && !base.is_empty() {
            vec![0]
        } else {
            view.entry_points.to_vec()
        };
        Ok(BeamSearch {
            space: Space::new(base, metric),
            level0,
            upper: upper.to_vec(),
            entry_points,
            ef: DEFAULT_EF,
            native: PhantomData,
        })
    }

    /// The current `ef` knob.
    pub fn ef(&self) -> usize {
        self.ef
    }

    /// True when level 0 is borrowed from the construction's native graph.
    pub fn uses_native_graph(&self) -> bool {
        matches!(self.level0, Cow::Borrowed(_))
    }
}

impl<N: NativeGraph> Search for BeamSearch<N> {
    type Context = BeamContext;

    const COUNTS_DISTANCES: bool = true;

    fn prepare(base: Base, graph: &Graph, metric: Metric, _params: &mut Params) -> Result<Self> {
        BeamSearch::from_view(
            base,
            &graph.view,
            metric,
            graph.native::<N>().map(N::level0),
        )
    }

    fn configure(&mut self, params: &mut Params) -> Result<()> {
        let ef = params.get_or("ef", self.ef)?;
        if ef == 0 {
            return Err(Error::invalid("parameter `ef` must be at least 1"));
        }
        self.ef = ef;
        Ok(())
    }

    fn new_context(&self) -> Result<BeamContext> {
        Ok(BeamContext {
            layer: LayerSearch::new(self.space.len()),
            seeds: Vec::with_capacity(self.entry_points.len()),
            distances: 0,
        })
    }

    fn search(
        &self,
        context: &mut BeamContext,
        query: &[f32],
        out: &mut Neighbors<'_>,
    ) -> Result<()> {
        if out.capacity() == 0 || self.space.is_empty() {
            return Ok(());
        }
        let ef = self.ef.max(out.capacity());
        let mut computed = self.entry_points.len() as u64;
        context.seeds.clear();
        context
            .seeds
            .extend(self.entry_points.iter().map(|&id| Candidate {
                distance: self.space.to(query, id),
                id,
            }));
        if !self.upper.is_empty() {
            let start = *context.seeds.iter().min().expect("entry points are set");
            let descended = self.upper.iter().rev().fold(start, |at, level| {
                greedy(level, &self.space, query, at, &mut computed)
            });
            context.seeds.clear();
            context.seeds.push(descended);
        }
        computed += context
            .layer
            .search(&*self.level0, &self.space, query, &context.seeds, ef);
        context.distances += computed;
        for found in context.layer.results() {
            if !out.push(found.id, found.distance) {
                break;
            }
        }
        Ok(())
    }

    fn memory_bytes(&self) -> usize {
        let level0 = match &self.level0 {
            Cow::Owned(copy) => copy.memory_bytes(),
            Cow::Borrowed(_) => 0,
        };
        level0
            + self.upper.capacity() * size_of::<Level<'static>>()
            + self.entry_points.capacity() * size_of::<u32>()
    }

    fn distance_count(context: &BeamContext) -> u64 {
        context.distances
    }
}
