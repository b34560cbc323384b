//! Where an evaluation was measured: the node, its CPU, and the machine
//! type that decides which figures may be ranked together.

use serde::{Deserialize, Serialize};

/// The node an evaluation was measured on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// Host name of the node.
    pub node: String,
    /// CPU model name (from `/proc/cpuinfo`).
    pub cpu_model: String,
    /// CPU feature flags (e.g. `avx2`, `avx512f`).
    pub cpu_flags: Vec<String>,
}

/// The CPU model and feature flags of this machine, as `/proc/cpuinfo`
/// gives them for its first processor (empty when unreadable).
pub(crate) fn this_cpu() -> (String, Vec<String>) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_string())
        })
    };
    let flags = field("flags")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    (field("model name").unwrap_or_default(), flags)
}

impl Machine {
    /// This node.
    pub fn detect() -> Machine {
        let node = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let (cpu_model, cpu_flags) = this_cpu();
        Machine {
            node: node.trim().to_string(),
            cpu_model,
            cpu_flags,
        }
    }

    /// The machine type figures are ranked within: the CPU model and the
    /// widest SIMD level it offers, e.g. `Intel Xeon … (avx512+vnni)`. Two
    /// nodes of one type run every variant's dispatched kernels alike.
    pub fn machine_type(&self) -> String {
        let model = if self.cpu_model.is_empty() {
            "unknown CPU"
        } else {
            &self.cpu_model
        };
        format!("{model} ({})", simd_level(&self.cpu_flags))
    }
}

/// The widest SIMD level among `flags`. `schema_v6.sql` derives the same
/// level for rows recorded before machines were; keep the two in step.
pub fn simd_level(flags: &[String]) -> &'static str {
    let has = |flag: &str| flags.iter().any(|f| f == flag);
    if has("avx512f") && has("avx512_vnni") {
        "avx512+vnni"
    } else if has("avx512f") {
        "avx512"
    } else if has("avx2") {
        "avx2"
    } else {
        "baseline"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(list: &str) -> Vec<String> {
        list.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn the_machine_type_names_the_model_and_its_widest_simd() {
        let mut machine = Machine {
            node: "n1".into(),
            cpu_model: "Xeon X".into(),
            cpu_flags: flags("sse2 avx2 avx512f avx512_vnni"),
        };
        assert_eq!(machine.machine_type(), "Xeon X (avx512+vnni)");
        machine.cpu_flags = flags("sse2 avx2 avx512f");
        assert_eq!(machine.machine_type(), "Xeon X (avx512)");
        machine.cpu_flags = flags("sse2 avx2");
        assert_eq!(machine.machine_type(), "Xeon X (avx2)");
        machine.cpu_model.clear();
        machine.cpu_flags = flags("sse2");
        assert_eq!(machine.machine_type(), "unknown CPU (baseline)");
    }

    #[test]
    fn this_node_is_detected() {
        let machine = Machine::detect();
        assert!(!machine.node.is_empty());
        assert!(!machine.cpu_flags.is_empty() || cfg!(not(target_arch = "x86_64")));
    }
}
