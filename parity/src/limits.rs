//! Argument checks made before any work: clap value parsers that name the accepted range, and the
//! context-against-prompt check shared by the commands that compute.

use anyhow::{bail, Result};

/// Most worker threads accepted: ggml's `GGML_MAX_N_THREADS` (bitnet.cpp refuses more too).
pub const MAX_THREADS: usize = 512;

/// `--threads`: 1 ..= [`MAX_THREADS`].
pub fn threads(s: &str) -> Result<usize, String> {
    let n: usize = s.trim().parse().map_err(|_| format!("{s:?} is not a thread count"))?;
    if (1..=MAX_THREADS).contains(&n) {
        Ok(n)
    } else {
        Err(format!("must be between 1 and {MAX_THREADS}, not {n}"))
    }
}

/// `--timeout`: whole seconds, at least one.
pub fn seconds(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(0) => Err("must be at least 1 second".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a whole number of seconds")),
    }
}

/// `--ctx`: at least one cell.
pub fn ctx(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a context size")),
    }
}

fn float(s: &str) -> Result<f32, String> {
    let x: f32 = s.trim().parse().map_err(|_| format!("{s:?} is not a number"))?;
    if x.is_finite() {
        Ok(x)
    } else {
        Err(format!("must be a finite number, not {x}"))
    }
}

/// `--temp`: any finite number; ≤ 0 means greedy.
pub fn temperature(s: &str) -> Result<f32, String> {
    float(s)
}

/// `--top-p`: in (0, 1] (1 = off).
pub fn top_p(s: &str) -> Result<f32, String> {
    let x = float(s)?;
    if x > 0.0 && x <= 1.0 {
        Ok(x)
    } else {
        Err(format!("must be in (0, 1] (1 turns it off), not {x}"))
    }
}

/// `--min-p`: in [0, 1] (0 = off).
pub fn min_p(s: &str) -> Result<f32, String> {
    let x = float(s)?;
    if (0.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err(format!("must be in [0, 1] (0 turns it off), not {x}"))
    }
}

/// `--repeat-penalty`: finite and positive (1 = off).
pub fn penalty(s: &str) -> Result<f32, String> {
    let x = float(s)?;
    if x > 0.0 {
        Ok(x)
    } else {
        Err(format!("must be positive (1 turns it off), not {x}"))
    }
}

/// The context must hold the prompt and `extra` more tokens.
pub fn check_ctx(n_prompt: usize, extra: usize, ctx: usize) -> Result<()> {
    if n_prompt + extra > ctx {
        bail!(
            "--ctx {ctx} is too small: the prompt has {n_prompt} tokens{}; give --ctx {} or more",
            if extra > 0 {
                format!(" and {extra} more must fit")
            } else {
                String::new()
            },
            n_prompt + extra
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_enforced_and_named() {
        assert_eq!(threads("2"), Ok(2));
        assert!(threads("0").unwrap_err().contains("between 1 and 512"));
        assert!(threads("100000000").is_err());
        assert!(top_p("5").unwrap_err().contains("(0, 1]"));
        assert!(top_p("0").is_err());
        assert_eq!(top_p("1"), Ok(1.0));
        assert!(temperature("nan").unwrap_err().contains("finite"));
        assert_eq!(temperature("-1"), Ok(-1.0));
        assert!(min_p("1.5").is_err());
        assert!(penalty("inf").is_err());
        assert!(seconds("0").is_err());
        assert!(ctx("0").is_err());
        assert!(check_ctx(10, 1, 10).unwrap_err().to_string().contains("--ctx 11"));
        assert!(check_ctx(10, 0, 10).is_ok());
    }
}
