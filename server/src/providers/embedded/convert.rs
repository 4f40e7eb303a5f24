//! Re-quantizes a GGUF model once into a type candle has SIMD kernels for (Q4_1 has none in candle 0.11; Q4_0 and Q8_0 do) and writes it with `gguf_file::write`.

use std::path::Path;

use candle_core::Device;
use candle_core::quantized::{GgmlDType, QTensor, gguf_file};

/// Tensor types candle 0.11 computes without a SIMD kernel on x86-64 (slow: 13-16 tokens/s
/// against 37-42 for Q4_0 with SmolLM2-135M on two cores).
const SLOW: &[GgmlDType] = &[GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1];

/// What a conversion did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    pub tensors: usize,
    pub requantized: usize,
    pub bytes: u64,
}

/// The GGUF `general.file_type` of a model mostly of `dtype`.
fn file_type(dtype: GgmlDType) -> Option<u32> {
    match dtype {
        GgmlDType::Q4_0 => Some(2),
        GgmlDType::Q8_0 => Some(7),
        _ => None,
    }
}

/// The types of a GGUF file's tensors with how many of each, e.g. `[("Q4_1", 210), ...]`.
pub fn tensor_types(path: &Path) -> Result<Vec<(String, usize)>, String> {
    let mut file =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let content = gguf_file::Content::read(&mut file)
        .map_err(|e| format!("{} is not a GGUF file: {e}", path.display()))?;
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for info in content.tensor_infos.values() {
        *counts.entry(format!("{:?}", info.ggml_dtype)).or_default() += 1;
    }
    let mut out: Vec<(String, usize)> = counts.into_iter().collect();
    out.sort_by_key(|b| std::cmp::Reverse(b.1));
    Ok(out)
}

/// Writes `src` to `dst` with every slow-kernel tensor re-quantized to `dtype` (Q4_0 or Q8_0);
/// the other tensors and all metadata are copied. The file appears at `dst` only when
/// complete.
pub fn requantize(src: &Path, dst: &Path, dtype: GgmlDType) -> Result<Converted, String> {
    let Some(file_type) = file_type(dtype) else {
        return Err(format!("cannot convert to {dtype:?}: use Q4_0 or Q8_0"));
    };
    let mut file =
        std::fs::File::open(src).map_err(|e| format!("cannot open {}: {e}", src.display()))?;
    let content = gguf_file::Content::read(&mut file)
        .map_err(|e| format!("{} is not a GGUF file: {e}", src.display()))?;
    let mut names: Vec<(&String, u64)> = content
        .tensor_infos
        .iter()
        .map(|(name, info)| (name, info.offset))
        .collect();
    names.sort_by_key(|(_, offset)| *offset);
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(names.len());
    let mut requantized = 0;
    for (name, _) in names {
        let tensor = content
            .tensor(&mut file, name, &Device::Cpu)
            .map_err(|e| format!("cannot read tensor {name}: {e}"))?;
        let fits = tensor
            .shape()
            .dims()
            .last()
            .is_some_and(|d| d.is_multiple_of(dtype.block_size()));
        let tensor = if SLOW.contains(&tensor.dtype()) && fits {
            requantized += 1;
            let values = tensor
                .dequantize(&Device::Cpu)
                .map_err(|e| format!("cannot dequantize {name}: {e}"))?;
            QTensor::quantize(&values, dtype)
                .map_err(|e| format!("cannot quantize {name} to {dtype:?}: {e}"))?
        } else {
            tensor
        };
        tensors.push((name.clone(), tensor));
    }
    let file_type_value = gguf_file::Value::U32(file_type);
    let mut metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| {
            if k == "general.file_type" {
                (k.as_str(), &file_type_value)
            } else {
                (k.as_str(), v)
            }
        })
        .collect();
    metadata.sort_by_key(|(k, _)| *k);
    let tmp = dst.with_extension("gguf.partial");
    let result = (|| {
        let out = std::fs::File::create(&tmp)
            .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        let mut out = std::io::BufWriter::new(out);
        let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        gguf_file::write(&mut out, &metadata, &refs)
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::io::Write::flush(&mut out)
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, dst).map_err(|e| format!("cannot rename to {}: {e}", dst.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    let bytes = std::fs::metadata(dst).map(|m| m.len()).unwrap_or(0);
    Ok(Converted {
        tensors: tensors.len(),
        requantized,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;

    #[test]
    fn q4_1_tensors_become_q4_0_and_everything_else_is_copied() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("m.gguf");
        let values: Vec<f32> = (0..64).map(|i| (i as f32 - 32.0) / 8.0).collect();
        let t = Tensor::from_vec(values, (2, 32), &Device::Cpu).unwrap();
        let q41 = QTensor::quantize(&t, GgmlDType::Q4_1).unwrap();
        let f32t = QTensor::quantize(&t, GgmlDType::F32).unwrap();
        let name = gguf_file::Value::String("tiny".into());
        let ft = gguf_file::Value::U32(3);
        let mut f = std::fs::File::create(&src).unwrap();
        gguf_file::write(
            &mut f,
            &[("general.name", &name), ("general.file_type", &ft)],
            &[("a.weight", &q41), ("b.weight", &f32t)],
        )
        .unwrap();
        drop(f);
        let dst = dir.path().join("m.q4_0.gguf");
        let done = requantize(&src, &dst, GgmlDType::Q4_0).unwrap();
        assert_eq!((done.tensors, done.requantized), (2, 1));
        let mut file = std::fs::File::open(&dst).unwrap();
        let ct = gguf_file::Content::read(&mut file).unwrap();
        assert_eq!(ct.tensor_infos["a.weight"].ggml_dtype, GgmlDType::Q4_0);
        assert_eq!(ct.tensor_infos["b.weight"].ggml_dtype, GgmlDType::F32);
        assert_eq!(ct.metadata["general.file_type"].to_u32().unwrap(), 2);
        assert_eq!(ct.metadata["general.name"].to_string().unwrap(), "tiny");
        let back = ct
            .tensor(&mut file, "a.weight", &Device::Cpu)
            .unwrap()
            .dequantize(&Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let original = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let worst = back
            .iter()
            .zip(&original)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst < 0.6, "close to the original values: {worst}");
        assert!(!dir.path().join("m.q4_0.gguf.partial").exists());
        let types = tensor_types(&dst).unwrap();
        assert!(types.contains(&("Q4_0".to_string(), 1)), "{types:?}");
        assert!(types.contains(&("F32".to_string(), 1)), "{types:?}");
        assert!(requantize(&src, &dst, GgmlDType::Q4_1).is_err());
    }
}
