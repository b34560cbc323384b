//! `leaderboard.csv`.

use super::ReportData;

/// One CSV field, quoted per RFC 4180 when it contains a comma, a double
/// quote, CR or LF (inner quotes doubled).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `leaderboard.csv`: RFC 4180 (CRLF line ends, header row); numbers in full
/// precision, empty fields for missing values, build params as a JSON object,
/// booleans as `true`/`false` (`sandboxed` empty when unknown), `implementation`
/// as stored (`native`, `python-bridge`; empty when unknown).
pub fn csv(data: &ReportData) -> String {
    let mut out = String::from(
        "rank,variant,variant_hash,status,status_text,reward,qps_at_0.90,qps_at_0.95,qps_at_0.99,\
         max_recall,build_seconds,index_memory_bytes,rss_bytes,build_params,evaluation_id,\
         sandboxed,build_threads,runs_disagree,implementation\r\n",
    );
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    let opt_u = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_default();
    for r in data.rows() {
        let fields = [
            r.rank.to_string(),
            r.variant_name.clone(),
            r.variant_hash.clone(),
            r.status.to_string(),
            r.status_text.clone(),
            r.reward.to_string(),
            opt(r.qps_at_090),
            opt(r.qps_at_095),
            opt(r.qps_at_099),
            opt(r.max_recall),
            opt(r.build_seconds),
            opt_u(r.index_memory_bytes),
            opt_u(r.rss_bytes),
            serde_json::to_string(&r.build_params).unwrap_or_default(),
            r.evaluation_id.0.to_string(),
            r.sandboxed.map(|b| b.to_string()).unwrap_or_default(),
            r.build_threads.map(|t| t.to_string()).unwrap_or_default(),
            r.runs_disagree.to_string(),
            r.implementation
                .map(|i| i.as_str().to_string())
                .unwrap_or_default(),
        ];
        out.push_str(
            &fields
                .iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_per_rfc4180() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("cr\r"), "\"cr\r\"");
        assert_eq!(csv_field(""), "");
    }
}
