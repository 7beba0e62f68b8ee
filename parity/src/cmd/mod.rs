//! One module per subcommand.

pub mod bench;
pub mod chat;
pub mod compare;
pub mod diagnose;
pub mod fixture;
pub mod generate;
pub mod inspect;
pub mod logits;
pub mod record;
pub mod report;
pub mod run;
pub mod tokenize;
pub mod trace;
pub mod verify;
