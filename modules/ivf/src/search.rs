//! IVF-Flat: scan the nearest lists exhaustively with the f32 kernel.

use annvil_abi::{Base, Error, Graph, Metric, Neighbors, ParamSpec, Params, Result, Search};
use annvil_core::TopK;
use annvil_distance::Kernel;

use crate::{Ivf, Probe};

/// Default of the `nprobe` knob.
pub const DEFAULT_NPROBE: usize = 8;

/// The declaration of the `nprobe` knob, shared by the searches over
/// inverted lists.
pub const NPROBE: ParamSpec = ParamSpec::int(
    "nprobe",
    1,
    1024,
    "8",
    "nearest lists scanned per query (values above nlist scan all)",
)
.knob();

/// Upper bound of the `reorder` knob.
pub const MAX_REORDER: usize = 1 << 16;

/// The declaration of the `reorder` knob, shared by the searches that
/// estimate distances and measure their best candidates exactly.
pub const REORDER: ParamSpec = ParamSpec::int(
    "reorder",
    1,
    MAX_REORDER as i64,
    "100",
    "best estimates measured exactly on the f32 vectors (at least k)",
)
.knob();

/// The IVF-Flat search slot over this crate's [`Ivf`] construction.
///
/// Knob (swept): `nprobe`, the number of nearest lists scanned (at least
/// 1; values above the number of lists scan them all). No prepare
/// parameters. Needs the native [`Ivf`]: the standard view of an IVF index
/// is empty, so the slot sets `NEEDS_NATIVE_GRAPH`.
pub struct IvfFlatSearch {
    ivf: &'static Ivf,
    kernel: Kernel,
    nprobe: usize,
}

/// Per-thread scratch of an [`IvfFlatSearch`].
pub struct IvfFlatContext {
    probe: Probe,
    top: TopK,
    distances: u64,
}

impl IvfFlatSearch {
    /// A searcher over `ivf`, built on `base` with `metric`.
    pub fn new(ivf: &'static Ivf, base: Base, metric: Metric) -> Result<IvfFlatSearch> {
        ivf.check_built_on(base, metric)?;
        Ok(IvfFlatSearch {
            ivf,
            kernel: annvil_distance::kernel(metric),
            nprobe: DEFAULT_NPROBE,
        })
    }

    /// The current `nprobe` knob.
    pub fn nprobe(&self) -> usize {
        self.nprobe
    }
}

/// Reads the `nprobe` knob (at least 1), keeping `current` when absent:
/// the knob of every search over inverted lists.
pub fn read_nprobe(params: &mut Params, current: usize) -> Result<usize> {
    let nprobe = params.get_or("nprobe", current)?;
    if nprobe == 0 {
        return Err(Error::invalid(
            "parameter `nprobe` must be at least 1 (values above nlist scan every list), not 0",
        ));
    }
    Ok(nprobe)
}

/// Reads a candidate-depth knob named `name` (`reorder`, or another with
/// its bounds, 1..=[`MAX_REORDER`]), keeping `current` when absent.
pub fn read_depth(params: &mut Params, name: &str, current: usize) -> Result<usize> {
    let depth = params.get_or(name, current)?;
    if !(1..=MAX_REORDER).contains(&depth) {
        return Err(Error::invalid(format!(
            "parameter `{name}` must be in 1..={MAX_REORDER}, not {depth}"
        )));
    }
    Ok(depth)
}

impl Search for IvfFlatSearch {
    type Context = IvfFlatContext;

    const NEEDS_NATIVE_GRAPH: bool = true;

    const COUNTS_DISTANCES: bool = true;

    const PARAMS: &'static [ParamSpec] = &[NPROBE];

    fn prepare(base: Base, graph: &Graph, metric: Metric, _params: &mut Params) -> Result<Self> {
        let ivf = graph.native::<Ivf>().ok_or_else(|| {
            Error::unsupported(
                "IVF-Flat search needs annvil-ivf's own Ivf construction (an IVF index has \
                 no standard graph view), and the host passed no native index",
            )
        })?;
        IvfFlatSearch::new(ivf, base, metric)
    }

    fn configure(&mut self, params: &mut Params) -> Result<()> {
        self.nprobe = read_nprobe(params, self.nprobe)?;
        Ok(())
    }

    fn new_context(&self) -> Result<IvfFlatContext> {
        Ok(IvfFlatContext {
            probe: Probe::new(self.ivf.lists().len()),
            top: TopK::new(),
            distances: 0,
        })
    }

    fn search(
        &self,
        context: &mut IvfFlatContext,
        query: &[f32],
        out: &mut Neighbors<'_>,
    ) -> Result<()> {
        let n = out.capacity();
        if n == 0 || self.ivf.is_empty() {
            return Ok(());
        }
        let ivf = self.ivf;
        let dim = ivf.dim();
        let lists = context
            .probe
            .select(ivf.centroids(), ivf.lists(), query, self.nprobe, n);
        context.top.reset(n);
        let mut computed = ivf.centroids().len() as u64;
        for list in lists {
            let c = list.id as usize;
            let ids = ivf.lists().list(c);
            for (&id, row) in ids.iter().zip(ivf.list_vectors(c).chunks_exact(dim)) {
                context.top.push(id, self.kernel.distance(query, row));
            }
            computed += ids.len() as u64;
        }
        context.distances += computed;
        context.top.drain_into(out);
        Ok(())
    }

    fn memory_bytes(&self) -> usize {
        0
    }

    fn context_memory_bytes(context: &IvfFlatContext) -> usize {
        context.probe.memory_bytes() + context.top.memory_bytes()
    }

    fn distance_count(context: &IvfFlatContext) -> u64 {
        context.distances
    }
}
