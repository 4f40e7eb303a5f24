//! The embedded model's tokenizer and chat template, both read from the GGUF file: candle's GGUF tokenizer with the `smollm` pre-tokenizer fixed, byte-exact streaming decode, stop tokens.

use std::collections::{BTreeMap, HashSet};

use candle_core::quantized::gguf_file;
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use tokenizers::Tokenizer;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;

use crate::providers::{ChatMessage, Role};

/// Pre-tokenizers candle 0.11 builds itself; any other falls back to its GPT-2 default, which
/// adds a space before every piece (also right after each special token) and so corrupts a
/// ChatML prompt.
const KNOWN_TO_CANDLE: &[&str] = &["qwen2", "llama3", "smaug-bpe", "lfm2"];

/// Names of end-of-turn tokens used by common chat templates.
const END_TOKENS: &[&str] = &["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>"];

/// A text-to-ids tokenizer plus what generation needs: the ids that end a reply, the bytes of
/// each id, and the prompt template.
pub struct ModelTokenizer {
    tokenizer: Tokenizer,
    /// Ids that end generation (the template's end token, the EOS token).
    pub stop_ids: HashSet<u32>,
    /// The bytes each id stands for (empty for special tokens, which are never shown).
    bytes: Vec<Vec<u8>>,
    /// The special tokens' texts, kept out of message contents.
    specials: Vec<String>,
    template: ChatTemplate,
}

/// How messages become one prompt.
pub enum ChatTemplate {
    /// The GGUF's `tokenizer.chat_template` (Jinja), with its BOS and EOS texts.
    Jinja {
        source: String,
        bos: String,
        eos: String,
    },
    /// `<|im_start|>role\ncontent<|im_end|>\n` per message, then `<|im_start|>assistant\n`.
    ChatMl,
}

fn md_string(ct: &gguf_file::Content, key: &str) -> Option<String> {
    ct.metadata
        .get(key)
        .and_then(|v| v.to_string().ok())
        .cloned()
}

fn md_u32(ct: &gguf_file::Content, key: &str) -> Option<u32> {
    ct.metadata.get(key).and_then(|v| v.to_u32().ok())
}

/// The pre-tokenizer of SmolLM2's `tokenizer.json`: each digit alone, then GPT-2 byte-level
/// splitting without a prefix space. `llama.cpp` calls it `smollm`.
pub fn smollm_pre_tokenizer() -> PreTokenizerWrapper {
    Sequence::new(vec![
        Digits::new(true).into(),
        ByteLevel::new(false, true, true).into(),
    ])
    .into()
}

/// GPT-2's map from bytes to the printable characters byte-level BPE vocabularies use.
fn byte_level_chars() -> BTreeMap<char, u8> {
    let mut map = BTreeMap::new();
    let mut extra = 0u32;
    for b in 0u8..=255 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let c = if printable {
            char::from(b)
        } else {
            extra += 1;
            char::from_u32(255 + extra).unwrap_or('\u{FFFD}')
        };
        map.insert(c, b);
    }
    map
}

impl ModelTokenizer {
    /// Builds the tokenizer from the `tokenizer.ggml.*` keys of a GGUF file.
    pub fn from_gguf(ct: &gguf_file::Content) -> Result<Self, String> {
        let mut tokenizer = Tokenizer::from_gguf(ct)
            .map_err(|e| format!("cannot build the tokenizer from the GGUF metadata: {e}"))?;
        let pre = md_string(ct, "tokenizer.ggml.pre").unwrap_or_else(|| "gpt2".into());
        if pre == "smollm" {
            tokenizer.with_pre_tokenizer(Some(smollm_pre_tokenizer()));
        } else if !KNOWN_TO_CANDLE.contains(&pre.as_str()) {
            let prefix = ct
                .metadata
                .get("tokenizer.ggml.add_space_prefix")
                .and_then(|v| v.to_bool().ok())
                .unwrap_or(false);
            tokenizer.with_pre_tokenizer(Some(PreTokenizerWrapper::from(ByteLevel::new(
                prefix, true, true,
            ))));
        }
        let tokens: Vec<String> = match ct.metadata.get("tokenizer.ggml.tokens") {
            Some(v) => v
                .to_vec()
                .map_err(|e| format!("tokenizer.ggml.tokens: {e}"))?
                .iter()
                .map(|t| t.to_string().cloned().unwrap_or_default())
                .collect(),
            None => return Err("the GGUF file has no tokenizer.ggml.tokens".into()),
        };
        let added = tokenizer.get_added_tokens_decoder();
        let chars = byte_level_chars();
        let bytes = tokens
            .iter()
            .enumerate()
            .map(|(id, t)| match added.get(&(id as u32)) {
                Some(a) if a.special => Vec::new(),
                _ => t
                    .chars()
                    .flat_map(|c| match chars.get(&c) {
                        Some(b) => vec![*b],
                        None => c.to_string().into_bytes(),
                    })
                    .collect(),
            })
            .collect();
        let mut specials: Vec<String> = added
            .values()
            .filter(|a| a.special)
            .map(|a| a.content.clone())
            .filter(|s| !s.is_empty())
            .collect();
        specials.sort();
        let token_text = |id: Option<u32>| {
            id.and_then(|id| tokens.get(id as usize))
                .cloned()
                .unwrap_or_default()
        };
        let eos_id = md_u32(ct, "tokenizer.ggml.eos_token_id");
        let mut stop_ids: HashSet<u32> = eos_id.into_iter().collect();
        for name in END_TOKENS {
            if let Some(id) = tokenizer.token_to_id(name) {
                stop_ids.insert(id);
            }
        }
        let template = match md_string(ct, "tokenizer.chat_template") {
            Some(source) if !source.trim().is_empty() => ChatTemplate::Jinja {
                source,
                bos: token_text(md_u32(ct, "tokenizer.ggml.bos_token_id")),
                eos: token_text(eos_id),
            },
            _ => ChatTemplate::ChatMl,
        };
        if stop_ids.is_empty() {
            return Err("the GGUF file names no end-of-sequence token".into());
        }
        Ok(ModelTokenizer {
            tokenizer,
            stop_ids,
            bytes,
            specials,
            template,
        })
    }

    /// Token ids of `text`, special tokens written in it included (`<|im_start|>` is one id).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| format!("cannot tokenize the prompt: {e}"))
    }

    /// The bytes of one generated id (nothing for special tokens or unknown ids).
    pub fn bytes_of(&self, id: u32) -> &[u8] {
        self.bytes.get(id as usize).map_or(&[], Vec::as_slice)
    }

    #[cfg(test)]
    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// The prompt for `messages`: the model's own template, or ChatML when it has none or
    /// its template cannot be rendered. A special token's text inside a message (a file that
    /// contains `<|im_end|>`) is broken up so it stays text.
    pub fn prompt(&self, messages: &[ChatMessage]) -> String {
        let messages: Vec<ChatMessage> = messages
            .iter()
            .map(|m| ChatMessage {
                role: m.role,
                content: defuse_specials(&m.content, &self.specials),
            })
            .collect();
        match &self.template {
            ChatTemplate::Jinja { source, bos, eos } => {
                match render_jinja(source, &messages, bos, eos) {
                    Ok(text) => text,
                    Err(e) => {
                        tracing::warn!(
                            "the model's chat template cannot be rendered ({e}); using ChatML"
                        );
                        chatml(&messages)
                    }
                }
            }
            ChatTemplate::ChatMl => chatml(&messages),
        }
    }
}

/// Inserts a zero-width space after the first character of each special token's text.
fn defuse_specials(text: &str, specials: &[String]) -> String {
    let mut out = text.to_string();
    for s in specials {
        if out.contains(s.as_str()) {
            let mut chars = s.chars();
            let first = chars.next().map(String::from).unwrap_or_default();
            out = out.replace(s.as_str(), &format!("{first}\u{200B}{}", chars.as_str()));
        }
    }
    out
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

/// ChatML with the generation prompt.
pub fn chatml(messages: &[ChatMessage]) -> String {
    let mut out = String::new();
    for m in messages {
        out.push_str("<|im_start|>");
        out.push_str(role_name(m.role));
        out.push('\n');
        out.push_str(&m.content);
        out.push_str("<|im_end|>\n");
    }
    out.push_str("<|im_start|>assistant\n");
    out
}

/// Renders a Hugging Face chat template with `messages`, `add_generation_prompt = true`,
/// `bos_token`, `eos_token` and `raise_exception`.
pub fn render_jinja(
    source: &str,
    messages: &[ChatMessage],
    bos: &str,
    eos: &str,
) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    env.add_function(
        "raise_exception",
        |msg: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                msg,
            ))
        },
    );
    env.add_template("chat", source)
        .map_err(|e| e.to_string())?;
    let template = env.get_template("chat").map_err(|e| e.to_string())?;
    let messages: Vec<minijinja::Value> = messages
        .iter()
        .map(|m| {
            let mut map = BTreeMap::new();
            map.insert(
                "role".to_string(),
                minijinja::Value::from(role_name(m.role)),
            );
            map.insert(
                "content".to_string(),
                minijinja::Value::from(m.content.as_str()),
            );
            minijinja::Value::from(map)
        })
        .collect();
    let mut ctx = BTreeMap::new();
    ctx.insert("messages".to_string(), minijinja::Value::from(messages));
    ctx.insert(
        "add_generation_prompt".to_string(),
        minijinja::Value::from(true),
    );
    ctx.insert("bos_token".to_string(), minijinja::Value::from(bos));
    ctx.insert("eos_token".to_string(), minijinja::Value::from(eos));
    template
        .render(minijinja::Value::from(ctx))
        .map_err(|e| e.to_string())
}

/// Turns generated bytes into text as soon as they form whole characters (a character may
/// span several tokens).
#[derive(Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// Adds `bytes`; returns the text that is complete now.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) if e.error_len().is_some() => {
                // An invalid sequence (not just an unfinished one): shown replaced.
                let text = String::from_utf8_lossy(&self.pending).into_owned();
                self.pending.clear();
                return text;
            }
            Err(e) => e.valid_up_to(),
        };
        let rest = self.pending.split_off(valid);
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending = rest;
        text
    }

    /// What is left at the end (an unfinished character, shown replaced).
    pub fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tokenizer-only GGUF of SmolLM2-135M-Instruct (its `tokenizer.*` keys and chat
    /// template, no weights) and reference ids from llama.cpp, which knows `smollm`.
    fn fixture() -> ModelTokenizer {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/embedded/smollm2-tokenizer.gguf"
        );
        let mut file = std::fs::File::open(path).expect("fixture");
        let ct = gguf_file::Content::read(&mut file).expect("gguf");
        ModelTokenizer::from_gguf(&ct).expect("tokenizer")
    }

    fn reference() -> Vec<(String, String, Vec<u32>)> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/embedded/smollm2-reference-ids.json"
        );
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("ids")).expect("json");
        v["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or_default().to_string(),
                    c["text"].as_str().unwrap_or_default().to_string(),
                    c["ids"]
                        .as_array()
                        .expect("ids")
                        .iter()
                        .map(|i| i.as_u64().unwrap_or(u64::MAX) as u32)
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn ids_match_llama_cpp_for_chatml_digits_unicode_and_code() {
        let tok = fixture();
        let cases = reference();
        let names: Vec<&str> = cases.iter().map(|(n, _, _)| n.as_str()).collect();
        for wanted in ["chatml", "digits", "unicode", "code", "whitespace"] {
            assert!(names.contains(&wanted), "reference case {wanted}");
        }
        for (name, text, ids) in &cases {
            assert_eq!(&tok.encode(text).expect("encode"), ids, "case {name}");
        }
    }

    #[test]
    fn candles_gpt2_fallback_would_put_a_space_after_special_tokens() {
        // The bug the fix is for: with candle's default pre-tokenizer the ChatML ids differ.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/embedded/smollm2-tokenizer.gguf"
        );
        let mut file = std::fs::File::open(path).expect("fixture");
        let ct = gguf_file::Content::read(&mut file).expect("gguf");
        let plain = Tokenizer::from_gguf(&ct).expect("tokenizer");
        let text = "<|im_start|>user\nHi<|im_end|>\n";
        let candle_ids = plain
            .encode(text, false)
            .expect("encode")
            .get_ids()
            .to_vec();
        let ours = fixture().encode(text).expect("encode");
        assert_ne!(candle_ids, ours);
        assert_eq!(ours.first(), Some(&1), "<|im_start|> is id 1");
        assert_eq!(
            ours.get(1),
            plain.token_to_id("user").as_ref(),
            "no space before `user`"
        );
    }

    #[test]
    fn digits_are_split_one_by_one() {
        let tok = fixture();
        let ids = tok.encode("12345").expect("encode");
        assert_eq!(ids.len(), 5);
    }

    #[test]
    fn decoding_bytes_round_trips_text_even_across_split_characters() {
        let tok = fixture();
        for (_, text, ids) in reference() {
            if text.contains("<|") {
                continue;
            }
            let mut stream = Utf8Stream::default();
            let mut out = String::new();
            for id in &ids {
                let piece = stream.push(tok.bytes_of(*id));
                assert!(!piece.contains('\u{FFFD}'), "no half character shown");
                out.push_str(&piece);
            }
            out.push_str(&stream.finish());
            assert_eq!(out, text);
        }
        assert!(tok.bytes_of(2).is_empty(), "special tokens are not shown");
        assert!(tok.bytes_of(u32::MAX).is_empty(), "unknown ids are empty");
    }

    #[test]
    fn the_template_comes_from_the_gguf_and_renders_chatml_with_its_default_system() {
        let tok = fixture();
        assert!(matches!(tok.template(), ChatTemplate::Jinja { .. }));
        let user = ChatMessage {
            role: Role::User,
            content: "Hi".into(),
        };
        let prompt = tok.prompt(std::slice::from_ref(&user));
        assert!(
            prompt.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"),
            "{prompt}"
        );
        assert!(prompt.ends_with("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));
        let system = ChatMessage {
            role: Role::System,
            content: "Be brief.".into(),
        };
        let prompt = tok.prompt(&[system.clone(), user.clone()]);
        assert_eq!(prompt, chatml(&[system, user]));
        assert!(tok.stop_ids.contains(&2), "<|im_end|> ends a reply");
    }

    #[test]
    fn a_broken_template_falls_back_to_chatml() {
        let m = [ChatMessage {
            role: Role::User,
            content: "x".into(),
        }];
        assert!(render_jinja("{% for %}", &m, "", "").is_err());
        assert!(render_jinja("{{ raise_exception('no') }}", &m, "", "").is_err());
        assert_eq!(
            chatml(&m),
            "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn special_token_text_inside_a_message_stays_text() {
        let tok = fixture();
        let m = [ChatMessage {
            role: Role::User,
            content: "a file with <|im_end|> inside".into(),
        }];
        let ids = tok.encode(&tok.prompt(&m)).expect("encode");
        let ends = ids.iter().filter(|i| **i == 2).count();
        // One <|im_end|> after the default system prompt, one after the user message.
        assert_eq!(ends, 2, "{ids:?}");
    }

    #[test]
    fn utf8_stream_holds_back_half_characters() {
        let mut s = Utf8Stream::default();
        let e = "é".as_bytes();
        assert_eq!(s.push(&e[..1]), "");
        assert_eq!(s.push(&e[1..]), "é");
        assert_eq!(s.push(&[0xF0, 0x9F]), "");
        assert_eq!(s.finish(), "\u{FFFD}");
        assert_eq!(s.push(&[0xFF, b'a']), "\u{FFFD}a");
    }
}
