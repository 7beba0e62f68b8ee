//! The worker's stderr, kept as a bounded tail, and the lines of it worth showing in an error.
//!
//! bitnet.cpp reports a failure once (`ggml.c:1234: GGML_ASSERT(x) failed`, `llama_model_load: error
//! loading model: ...`) and may follow it with dozens of stack frames; a plain "last N lines" loses the
//! one line that says what happened.

use std::collections::VecDeque;

/// Lines kept of the worker's stderr.
const KEEP: usize = 400;
/// Lines that state an error, most recent kept, at most.
const REPORT_ERRORS: usize = 8;
/// Last lines always shown.
const REPORT_LAST: usize = 8;

/// The last [`KEEP`] lines and how many were ever seen.
#[derive(Debug, Default)]
pub struct StderrTail {
    lines: VecDeque<String>,
    total: u64,
}

impl StderrTail {
    /// Append one line (trailing whitespace dropped).
    pub fn push(&mut self, line: &[u8]) {
        if self.lines.len() == KEEP {
            self.lines.pop_front();
        }
        self.lines
            .push_back(String::from_utf8_lossy(line).trim_end().to_string());
        self.total += 1;
    }

    /// Lines seen so far, including dropped ones.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The lines worth showing: see [`meaningful`].
    pub fn report(&self) -> Vec<String> {
        meaningful(&self.lines.iter().cloned().collect::<Vec<_>>())
    }
}

/// Whether a line states a failure (ggml's asserts and aborts, llama.cpp's load errors, C++ exceptions,
/// Rust panics) rather than being a stack frame or progress output.
fn states_error(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    [
        "error",
        "assert",
        "fail",
        "abort",
        "what():",
        "terminate called",
        "exception",
        "fatal",
        "panicked",
    ]
    .iter()
    .any(|k| l.contains(k))
}

/// The most recent lines that state an error, plus the last few lines, oldest first; `…` marks left-out
/// lines between them.
pub fn meaningful(lines: &[String]) -> Vec<String> {
    let n = lines.len();
    let mut keep: Vec<usize> = (0..n).filter(|&i| states_error(&lines[i])).collect();
    keep.drain(..keep.len().saturating_sub(REPORT_ERRORS));
    keep.extend(n.saturating_sub(REPORT_LAST)..n);
    keep.sort_unstable();
    keep.dedup();
    let mut out = Vec::with_capacity(keep.len() + 2);
    let mut next = 0;
    for i in keep {
        if i > next {
            out.push("…".to_string());
        }
        out.push(lines[i].clone());
        next = i + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_assert_line_survives_a_long_backtrace() {
        let mut lines = vec!["llama_model_loader: loaded meta data".to_string()];
        lines.push("ggml/src/ggml.c:4567: GGML_ASSERT(ggml_nelements(a) == ne0) failed".into());
        lines.extend((0..60).map(|i| format!("#{i} 0x00007f in frame_{i} () from libggml.so")));
        let shown = meaningful(&lines);
        assert_eq!(shown[0], "…");
        assert!(shown[1].contains("GGML_ASSERT"), "{shown:?}");
        assert_eq!(shown[2], "…");
        assert_eq!(shown.last().unwrap(), "#59 0x00007f in frame_59 () from libggml.so");
        assert_eq!(shown.len(), 3 + REPORT_LAST);
    }

    #[test]
    fn short_logs_are_shown_whole() {
        let lines: Vec<String> = ["a", "b", "llama_model_load: error loading model: bad magic"]
            .map(String::from)
            .to_vec();
        assert_eq!(meaningful(&lines), lines);
        assert!(meaningful(&[]).is_empty());
    }

    #[test]
    fn the_tail_is_bounded_and_counts_everything() {
        let mut t = StderrTail::default();
        for i in 0..(KEEP + 5) {
            t.push(format!("line {i}  ").as_bytes());
        }
        assert_eq!(t.total(), (KEEP + 5) as u64);
        assert_eq!(t.lines.len(), KEEP);
        assert_eq!(t.report().last().unwrap(), &format!("line {}", KEEP + 4));
    }
}
