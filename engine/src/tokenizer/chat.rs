//! Chat templates as llama.cpp applies them: it never runs the GGUF's Jinja template; it matches
//! substrings of it (`llama_chat_apply_template_internal`) and formats with a built-in formatter.
//! For BitNet b1.58 2B-4T the file's template contains "BITNET", which selects the "bitnet" formatter
//! (spec §7.2). llama-cli formats a conversation incrementally ([`format_single`], as
//! `common_chat_format_single`) and tokenizes each chunk with special tokens parsed, BOS on the first.

use thiserror::Error;

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: &str) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// The template families llama.cpp recognises, in its detection order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Chatml,
    Llama2,
    Phi3,
    Falcon3,
    Zephyr,
    Monarch,
    Gemma,
    Orion,
    Openchat,
    Vicuna,
    Deepseek,
    CommandR,
    Llama3,
    Chatglm3,
    Chatglm4,
    Minicpm,
    Deepseek2,
    Exaone3,
    Bitnet,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Chatml => "chatml",
            Family::Llama2 => "llama2",
            Family::Phi3 => "phi3",
            Family::Falcon3 => "falcon3",
            Family::Zephyr => "zephyr",
            Family::Monarch => "monarch",
            Family::Gemma => "gemma",
            Family::Orion => "orion",
            Family::Openchat => "openchat",
            Family::Vicuna => "vicuna",
            Family::Deepseek => "deepseek",
            Family::CommandR => "command-r",
            Family::Llama3 => "llama3",
            Family::Chatglm3 => "chatglm3",
            Family::Chatglm4 => "chatglm4",
            Family::Minicpm => "minicpm",
            Family::Deepseek2 => "deepseek2",
            Family::Exaone3 => "exaone3",
            Family::Bitnet => "bitnet",
        }
    }
}

/// Detect the family of a template text the way `llama_chat_apply_template_internal` does: the first
/// substring test that matches wins; `None` when nothing matches.
pub fn detect(tmpl: &str) -> Option<Family> {
    let has = |s: &str| tmpl.contains(s);
    let checks: [(Family, bool); 19] = [
        (Family::Chatml, has("<|im_start|>")),
        (Family::Llama2, has("[INST]")),
        (Family::Phi3, has("<|assistant|>") && has("<|end|>")),
        // Falcon3 (and Falcon-E, whose own `falcon_e` branch in the fork can never match: it requires the
        // name to equal "falcon_e" and to contain "assistant").
        (Family::Falcon3, has("<|assistant|>") && has("<|user|>")),
        (Family::Zephyr, has("<|user|>")),
        (Family::Monarch, has("bos_token + message['role']")),
        (Family::Gemma, has("<start_of_turn>")),
        (Family::Orion, has("'\\n\\nAssistant: ' + eos_token")),
        (Family::Openchat, has("GPT4 Correct ")),
        (Family::Vicuna, has("USER: ") && has("ASSISTANT: ")),
        (Family::Deepseek, has("### Instruction:") && has("<|EOT|>")),
        (
            Family::CommandR,
            has("<|START_OF_TURN_TOKEN|>") && has("<|USER_TOKEN|>"),
        ),
        (Family::Llama3, has("<|start_header_id|>") && has("<|end_header_id|>")),
        (Family::Chatglm3, has("[gMASK]sop")),
        (Family::Chatglm4, has("[gMASK]<sop>")),
        (Family::Minicpm, has("<用户>")),
        (Family::Deepseek2, has("'Assistant: ' + message['content'] + eos_token")),
        (
            Family::Exaone3,
            has("[|system|]") && has("[|assistant|]") && has("[|endofturn|]"),
        ),
        (Family::Bitnet, has("BITNET")),
    ];
    checks.into_iter().find_map(|(f, hit)| hit.then_some(f))
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ChatError {
    #[error("unknown chat template {0:?} (expected raw, chatml, llama3, falcon3, bitnet or auto)")]
    UnknownName(String),
    #[error("the model's chat template is llama.cpp's {0:?} family, which this engine does not format")]
    Unsupported(&'static str),
}

/// A formatter this engine implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatTemplate {
    /// Message contents concatenated, nothing added.
    Raw,
    Chatml,
    Llama3,
    /// `<|role|>\ncontent\n` per message, `<|assistant|>\n` to prompt (Falcon3 1.58bit, Falcon-E).
    Falcon3,
    /// The built-in "bitnet" formatter of bitnet.cpp's llama.cpp.
    Bitnet,
}

impl ChatTemplate {
    /// `raw`, `chatml`, `llama3`, `falcon3`, `bitnet`, or `auto`: detect from the model's template, chatml when the
    /// model has none or when nothing matches (llama-cli's fallback).
    pub fn from_name(name: &str, model_template: Option<&str>) -> Result<Self, ChatError> {
        match name {
            "raw" => Ok(ChatTemplate::Raw),
            "chatml" => Ok(ChatTemplate::Chatml),
            "llama3" => Ok(ChatTemplate::Llama3),
            "falcon3" => Ok(ChatTemplate::Falcon3),
            "bitnet" => Ok(ChatTemplate::Bitnet),
            "auto" => match model_template.and_then(detect) {
                None | Some(Family::Chatml) => Ok(ChatTemplate::Chatml),
                Some(Family::Llama3) => Ok(ChatTemplate::Llama3),
                Some(Family::Falcon3) => Ok(ChatTemplate::Falcon3),
                Some(Family::Bitnet) => Ok(ChatTemplate::Bitnet),
                Some(f) => Err(ChatError::Unsupported(f.name())),
            },
            other => Err(ChatError::UnknownName(other.into())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ChatTemplate::Raw => "raw",
            ChatTemplate::Chatml => "chatml",
            ChatTemplate::Llama3 => "llama3",
            ChatTemplate::Falcon3 => "falcon3",
            ChatTemplate::Bitnet => "bitnet",
        }
    }

    /// Format a whole conversation; `add_ass` appends the assistant generation prompt (the bitnet
    /// formatter ignores it: its user turn always ends with "Assistant: ").
    pub fn apply(self, msgs: &[ChatMessage], add_ass: bool) -> String {
        let mut s = String::new();
        match self {
            ChatTemplate::Raw => msgs.iter().for_each(|m| s.push_str(&m.content)),
            ChatTemplate::Chatml => {
                for m in msgs {
                    s += &format!("<|im_start|>{}\n{}<|im_end|>\n", m.role, m.content);
                }
                if add_ass {
                    s += "<|im_start|>assistant\n";
                }
            }
            ChatTemplate::Llama3 => {
                for m in msgs {
                    s += &format!(
                        "<|start_header_id|>{}<|end_header_id|>\n\n{}<|eot_id|>",
                        m.role,
                        trim(&m.content)
                    );
                }
                if add_ass {
                    s += "<|start_header_id|>assistant<|end_header_id|>\n\n";
                }
            }
            ChatTemplate::Falcon3 => {
                for m in msgs {
                    s += &format!("<|{}|>\n{}\n", m.role, m.content);
                }
                if add_ass {
                    s += "<|assistant|>\n";
                }
            }
            ChatTemplate::Bitnet => {
                for m in msgs {
                    match m.role.as_str() {
                        "system" => s += &format!("System: {}", m.content),
                        "user" => s += &format!("User: {}<|eot_id|>Assistant: ", m.content),
                        "assistant" => s += &m.content,
                        _ => {}
                    }
                }
            }
        }
        s
    }
}

/// The text to append for `new` after `past` was already fed (`common_chat_format_single`): the
/// difference between the renderings with and without it, keeping a trailing newline of the past.
pub fn format_single(t: ChatTemplate, past: &[ChatMessage], new: &ChatMessage, add_ass: bool) -> String {
    let before = if past.is_empty() {
        String::new()
    } else {
        t.apply(past, false)
    };
    let mut all = past.to_vec();
    all.push(new.clone());
    let after = t.apply(&all, add_ass);
    let mut out = String::new();
    if add_ass && before.ends_with('\n') {
        out.push('\n');
    }
    // The renderings share `before` as a prefix for every formatter here; guard anyway.
    out.push_str(after.get(before.len()..).unwrap_or(""));
    out
}

/// llama.cpp's `trim`: strips ASCII whitespace (`isspace`) at both ends.
fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convo() -> Vec<ChatMessage> {
        vec![
            ChatMessage::new("system", "S"),
            ChatMessage::new("user", "U1"),
            ChatMessage::new("assistant", "A1"),
            ChatMessage::new("user", "U2"),
        ]
    }

    #[test]
    fn falcon3_format_and_detection() {
        let t = ChatTemplate::Falcon3.apply(&convo()[..2], true);
        assert_eq!(t, "<|system|>\nS\n<|user|>\nU1\n<|assistant|>\n");
        // Falcon3's own template text uses <|user|> and <|assistant|>: detected before zephyr.
        let tmpl = "{% for m in messages %}{{ '<|' + m['role'] + '|>\n' }}{% endfor %}<|user|><|assistant|>";
        assert_eq!(ChatTemplate::from_name("auto", Some(tmpl)), Ok(ChatTemplate::Falcon3));
        // With <|end|> it is phi3 (checked first).
        assert_eq!(detect("<|assistant|><|user|><|end|>"), Some(Family::Phi3));
    }

    #[test]
    fn bitnet_matches_spec_example() {
        assert_eq!(
            ChatTemplate::Bitnet.apply(&convo(), true),
            "System: SUser: U1<|eot_id|>Assistant: A1User: U2<|eot_id|>Assistant: "
        );
    }

    #[test]
    fn bitnet_incremental_chunks_concatenate_to_whole() {
        let msgs = convo();
        let mut fed = String::new();
        for i in 0..msgs.len() {
            fed += &format_single(ChatTemplate::Bitnet, &msgs[..i], &msgs[i], true);
        }
        assert_eq!(fed, ChatTemplate::Bitnet.apply(&msgs, true));
        assert_eq!(
            format_single(ChatTemplate::Bitnet, &msgs[..3], &msgs[3], true),
            "User: U2<|eot_id|>Assistant: "
        );
    }

    #[test]
    fn official_2b4t_template_selects_bitnet() {
        let tmpl = "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}{% if message['role'] == 'user' %}{{ 'Human: ' + message['content'] + '\\n\\nBITNETAssistant: ' + eos_token }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}";
        assert_eq!(detect(tmpl), Some(Family::Bitnet));
        assert_eq!(ChatTemplate::from_name("auto", Some(tmpl)), Ok(ChatTemplate::Bitnet));
    }

    #[test]
    fn auto_falls_back_to_chatml() {
        assert_eq!(ChatTemplate::from_name("auto", None), Ok(ChatTemplate::Chatml));
        assert_eq!(
            ChatTemplate::from_name("auto", Some("{{ plain }}")),
            Ok(ChatTemplate::Chatml)
        );
        assert_eq!(
            ChatTemplate::from_name("auto", Some("<start_of_turn>")),
            Err(ChatError::Unsupported("gemma"))
        );
        assert!(matches!(
            ChatTemplate::from_name("jinja", None),
            Err(ChatError::UnknownName(_))
        ));
    }

    #[test]
    fn earlier_families_win() {
        // chatml is tested before llama3, so a template with both markers is chatml.
        assert_eq!(
            detect("<|im_start|><|start_header_id|><|end_header_id|>"),
            Some(Family::Chatml)
        );
        assert_eq!(detect("<|start_header_id|>x<|end_header_id|>"), Some(Family::Llama3));
    }

    #[test]
    fn chatml_and_llama3_formats() {
        let m = [ChatMessage::new("user", " hi \n")];
        assert_eq!(
            ChatTemplate::Chatml.apply(&m, true),
            "<|im_start|>user\n hi \n<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(
            ChatTemplate::Llama3.apply(&m, true),
            "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        );
        // chatml's past rendering ends in '\n', so the incremental chunk starts with one.
        let past = [ChatMessage::new("user", "a")];
        let chunk = format_single(ChatTemplate::Chatml, &past, &ChatMessage::new("user", "b"), true);
        assert_eq!(chunk, "\n<|im_start|>user\nb<|im_end|>\n<|im_start|>assistant\n");
    }
}
