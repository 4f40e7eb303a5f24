//! The llama-architecture transformer over quantized GGUF weights: a trimmed copy of candle-transformers 0.11.1 `models/quantized_llama.rs` (dense GGUF models only).
//
// Copied from candle-transformers 0.11.1 (MIT OR Apache-2.0, Copyright the candle authors,
// https://github.com/huggingface/candle) so the server does not compile that crate's ~125
// other models. Kept: GGUF loading, grouped-query attention, RoPE (both conventions), the KV
// cache. Dropped: the GGML v1 loader, mixture of experts, Metal SDPA, tracing spans.
// Changed: attention is candle-nn's CPU flash attention (grouped-query heads without copying
// K and V per head, the causal mask without building it) over a preallocated KV cache, as
// candle's quantized Qwen3 does; the context length is the caller's (at most `MAX_SEQ_LEN`);
// a missing metadata key is an error that names it.

use candle_core::quantized::{QMatMul, QTensor, gguf_file};
use candle_core::{DType, Device, IndexOp, Module, Result, Tensor};
use candle_nn::Embedding;
use candle_nn::attention::{AttnMask, flash_attn};
use candle_nn::kv_cache::KvCache;

/// KV cache positions allocated at first (it grows by as many when full).
const KV_CACHE_STEP: usize = 512;
/// From this many rows on (a piece of the prompt), a quantized weight is expanded to f32 and
/// multiplied with candle's f32 GEMM, which is several times faster per row than the
/// quantized dot products that suit one row (a generated token).
const GEMM_ROWS: usize = 16;

/// `x @ w^T` for a quantized weight: quantized kernels for a few rows, f32 GEMM for many.
fn qmatmul(w: &QMatMul, x: &Tensor) -> Result<Tensor> {
    let rows = x.elem_count() / x.dim(candle_core::D::Minus1)?.max(1);
    match w {
        QMatMul::QTensor(q) if rows >= GEMM_ROWS => {
            let w = q.dequantize(x.device())?;
            let w = match *x.dims() {
                [b1, b2, _, _] => w.broadcast_left((b1, b2))?.t()?,
                [b, _, _] => w.broadcast_left(b)?.t()?,
                _ => w.t()?,
            };
            x.matmul(&w)
        }
        _ => w.forward(x),
    }
}

/// The longest context candle's rotary tables are built for here.
pub const MAX_SEQ_LEN: usize = crate::config::EMBEDDED_MAX_CONTEXT_TOKENS as usize;

#[derive(Debug, Clone)]
struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    fn from_qtensor(weight: QTensor, eps: f64) -> Result<Self> {
        let weight = weight.dequantize(&weight.device())?;
        Ok(Self {
            weight,
            eps: eps as f32,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::rms_norm(x, &self.weight, self.eps)
    }
}

#[derive(Debug, Clone)]
struct Mlp {
    gate: QMatMul,
    down: QMatMul,
    up: QMatMul,
}

impl Mlp {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let w1 = qmatmul(&self.gate, xs)?;
        let w3 = qmatmul(&self.up, xs)?;
        qmatmul(&self.down, &(candle_nn::ops::silu(&w1)? * w3)?)
    }
}

#[derive(Debug, Clone)]
struct Layer {
    wq: QMatMul,
    wk: QMatMul,
    wv: QMatMul,
    wo: QMatMul,
    attention_norm: RmsNorm,
    mlp: Mlp,
    ffn_norm: RmsNorm,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    /// RoPE convention: true = NEOX (pairs i with i+d/2), false = interleaved (2i with 2i+1).
    rope_is_neox: bool,
    cos: Tensor,
    sin: Tensor,
    /// Keys and values by position: `(1, positions, kv heads, head_dim)`.
    kv_cache: KvCache,
}

impl Layer {
    /// Rotates `x` of shape `(batch, seq, heads, head_dim)` for positions `index_pos..`.
    fn rotary(&self, x: &Tensor, index_pos: usize) -> Result<Tensor> {
        let (_b, seq_len, _h, _d) = x.dims4()?;
        let cos = self.cos.narrow(0, index_pos, seq_len)?;
        let sin = self.sin.narrow(0, index_pos, seq_len)?;
        let x = x.transpose(1, 2)?.contiguous()?;
        let x = if self.rope_is_neox {
            candle_nn::rotary_emb::rope(&x, &cos, &sin)?
        } else {
            candle_nn::rotary_emb::rope_i(&x, &cos, &sin)?
        };
        x.transpose(1, 2)?.contiguous()
    }

    fn attention(&mut self, x: &Tensor, index_pos: usize) -> Result<Tensor> {
        let (b_sz, seq_len, n_embd) = x.dims3()?;
        let q = qmatmul(&self.wq, x)?.reshape((b_sz, seq_len, self.n_head, self.head_dim))?;
        let k = qmatmul(&self.wk, x)?.reshape((b_sz, seq_len, self.n_kv_head, self.head_dim))?;
        let v = qmatmul(&self.wv, x)?
            .reshape((b_sz, seq_len, self.n_kv_head, self.head_dim))?
            .contiguous()?;
        let q = self.rotary(&q, index_pos)?;
        let k = self.rotary(&k, index_pos)?;
        let (k, v) = self.kv_cache.append(&k, &v)?;
        let scale = 1.0 / (self.head_dim as f32).sqrt();
        // (batch, heads, seq, head_dim)
        let y = flash_attn::<f32>(
            &q,
            &k,
            &v,
            scale,
            AttnMask::causal_with_offset(index_pos),
            None,
            None,
        )?;
        let y = y.transpose(1, 2)?.reshape((b_sz, seq_len, n_embd))?;
        qmatmul(&self.wo, &y)
    }
}

/// The model's weights and its KV cache (one conversation at a time).
#[derive(Debug, Clone)]
pub struct Llama {
    embeddings: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QMatMul,
    /// Positions the rotary tables cover.
    pub context_len: usize,
}

fn rope_tables(
    head_dim: usize,
    base: f32,
    len: usize,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let theta: Vec<f32> = (0..head_dim)
        .step_by(2)
        .map(|i| 1f32 / base.powf(i as f32 / head_dim as f32))
        .collect();
    let theta = Tensor::new(theta.as_slice(), device)?;
    let idx_theta = Tensor::arange(0, len as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((len, 1))?
        .matmul(&theta.reshape((1, theta.elem_count()))?)?;
    Ok((idx_theta.cos()?, idx_theta.sin()?))
}

impl Llama {
    /// Loads a llama-architecture model (`general.architecture` llama, mistral, qwen2, ...)
    /// from GGUF content, with rotary tables for `context_len` positions (at most
    /// [`MAX_SEQ_LEN`]).
    pub fn from_gguf<R: std::io::Seek + std::io::Read>(
        ct: &gguf_file::Content,
        reader: &mut R,
        context_len: usize,
        device: &Device,
    ) -> Result<Self> {
        let arch = ct
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_else(|| "llama".to_string());
        let md = |key: &str| {
            let full = format!("{arch}.{key}");
            ct.metadata.get(&full).ok_or_else(|| {
                candle_core::Error::Msg(format!("the GGUF file has no metadata key {full}"))
            })
        };
        let head_count = md("attention.head_count")?.to_u32()? as usize;
        let head_count_kv = md("attention.head_count_kv")?.to_u32()? as usize;
        let block_count = md("block_count")?.to_u32()? as usize;
        let embedding_length = md("embedding_length")?.to_u32()? as usize;
        if head_count == 0 || head_count_kv == 0 || !head_count.is_multiple_of(head_count_kv) {
            candle_core::bail!("unsupported head counts {head_count}/{head_count_kv}");
        }
        let head_dim = embedding_length / head_count;
        let rope_dim = md("rope.dimension_count")
            .and_then(|v| v.to_u32())
            .map_or(head_dim, |v| v as usize);
        let rms_norm_eps = md("attention.layer_norm_rms_epsilon")?.to_f32()? as f64;
        let rope_freq_base = md("rope.freq_base")
            .and_then(|m| m.to_f32())
            .unwrap_or(10000f32);
        let rope_is_neox = matches!(
            arch.as_str(),
            "qwen" | "qwen2" | "qwen3" | "falcon" | "phi2" | "phi3" | "stablelm" | "starcoder2"
        );
        let context_len = context_len.clamp(1, MAX_SEQ_LEN);
        let (cos, sin) = rope_tables(rope_dim, rope_freq_base, context_len, device)?;
        let tok_embeddings_q = ct.tensor(reader, "token_embd.weight", device)?;
        let tok_embeddings = tok_embeddings_q.dequantize(device)?;
        let norm = RmsNorm::from_qtensor(
            ct.tensor(reader, "output_norm.weight", device)?,
            rms_norm_eps,
        )?;
        // Tied embeddings: no output.weight.
        let output = match ct.tensor(reader, "output.weight", device) {
            Ok(tensor) => tensor,
            Err(_) => tok_embeddings_q,
        };
        let mut layers = Vec::with_capacity(block_count);
        for i in 0..block_count {
            let mut t = |name: &str| ct.tensor(reader, &format!("blk.{i}.{name}.weight"), device);
            let q = |t: QTensor| QMatMul::from_qtensor(t);
            layers.push(Layer {
                wq: q(t("attn_q")?)?,
                wk: q(t("attn_k")?)?,
                wv: q(t("attn_v")?)?,
                wo: q(t("attn_output")?)?,
                attention_norm: RmsNorm::from_qtensor(t("attn_norm")?, rms_norm_eps)?,
                mlp: Mlp {
                    gate: q(t("ffn_gate")?)?,
                    down: q(t("ffn_down")?)?,
                    up: q(t("ffn_up")?)?,
                },
                ffn_norm: RmsNorm::from_qtensor(t("ffn_norm")?, rms_norm_eps)?,
                n_head: head_count,
                n_kv_head: head_count_kv,
                head_dim,
                rope_is_neox,
                cos: cos.clone(),
                sin: sin.clone(),
                kv_cache: KvCache::new(1, KV_CACHE_STEP.min(context_len)),
            });
        }
        Ok(Self {
            embeddings: Embedding::new(tok_embeddings, embedding_length),
            layers,
            norm,
            output: QMatMul::from_qtensor(output)?,
            context_len,
        })
    }

    /// Forgets the previous conversation.
    pub fn clear_kv_cache(&mut self) {
        for layer in &mut self.layers {
            layer.kv_cache.reset();
        }
    }

    /// Runs `x` (shape `(1, seq_len)`, token ids) at positions `index_pos..`; returns the
    /// logits of the last position. Fails when the positions pass the context.
    pub fn forward(&mut self, x: &Tensor, index_pos: usize) -> Result<Tensor> {
        let (_b, seq_len) = x.dims2()?;
        if seq_len == 0 || index_pos + seq_len > self.context_len {
            candle_core::bail!(
                "positions {index_pos}..{} are outside the context of {} tokens",
                index_pos + seq_len,
                self.context_len
            );
        }
        let mut h = self.embeddings.forward(x)?;
        for layer in &mut self.layers {
            let residual = h.clone();
            let x = layer.attention_norm.forward(&h)?;
            let x = (layer.attention(&x, index_pos)? + residual)?;
            let residual = x.clone();
            let y = layer.mlp.forward(&layer.ffn_norm.forward(&x)?)?;
            h = (y + residual)?;
        }
        let x = self.norm.forward(&h)?;
        let x = x.i((.., seq_len - 1, ..))?;
        self.output.forward(&x)
    }
}
