//! `embed pooled` (science.md, "Embeddings"): the global-average-pooled activation of one layer
//! for every image of every split, computed once in eval mode and stored for later stages.

use super::checkpoint;
use super::data::{Dataset, Split};
use super::models::{self, Network};
use super::precision::Compute;
use super::{Context, Result, StageError};
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

pub const EMBEDDINGS_FILE: &str = "embeddings.safetensors";

/// A layer's activation averaged over its spatial positions: `[n, K, h, w]` → `[n, K]`. A layer
/// without spatial extent (`[n, K]`, or the `[n, K, 1, 1]` of global pooling) keeps its values.
pub fn pool(activation: &Tensor) -> Result<Tensor> {
    match activation.dim() {
        2 => Ok(activation.shallow_clone()),
        4 => Ok(activation.f_mean_dim(&[2i64, 3][..], false, Kind::Float)?),
        d => Err(StageError::new(format!("cannot pool an activation of {d} dimensions ({:?})", activation.size()))),
    }
}

/// Embeddings, labels and logits of every image of a split, in row order.
pub struct Embedded {
    pub embeddings: Tensor,
    pub labels: Tensor,
    pub logits: Tensor,
}

/// Embeds a split in batches of `batch` images; the model stays in eval mode and no graph is built.
pub fn embed_split(net: &Network, split: &Split, layer: &str, batch: i64) -> Result<Embedded> {
    embed_first(net, split, layer, batch, None, Compute::FP32, &crate::no_progress)
}

/// Like [`embed_split`] over the first `batches` batches only (a smoke run's), in row order, with
/// the forward passes in `compute`'s precision and memory format (the network must have been
/// prepared for it). Activations are pooled in fp32 whatever the precision. `progress` is called
/// with (images done, images) after each batch.
pub fn embed_first(
    net: &Network,
    split: &Split,
    layer: &str,
    batch: i64,
    batches: Option<usize>,
    compute: Compute,
    progress: &dyn Fn(i64, i64),
) -> Result<Embedded> {
    let _guard = tch::no_grad_guard();
    let device = net.vs.device();
    let batch = batch.max(1);
    let n = match batches {
        Some(b) => split.len().min(batch * i64::try_from(b).unwrap_or(i64::MAX / batch)),
        None => split.len(),
    };
    let (mut embeddings, mut logits) = (Vec::new(), Vec::new());
    let mut start = 0;
    while start < n {
        let index = Tensor::f_arange_start(start, (start + batch).min(n), (Kind::Int64, tch::Device::Cpu))?;
        let (x, _) = split.batch(&index)?;
        let x = compute.input(&x)?;
        let (out, activation) = compute.run(device, || net.forward_with(&x, false, layer))?;
        embeddings.push(pool(&activation.f_to_kind(Kind::Float)?)?);
        logits.push(out.f_to_kind(Kind::Float)?);
        start += batch;
        progress(start.min(n), n);
    }
    if n == 0 {
        // An empty split still gets tensors of the right width, read off one blank image.
        let size = split.images().size();
        let blank = Tensor::f_zeros([1, size[1], size[2], size[3]], (Kind::Float, device))?;
        let (out, activation) = net.forward_with(&blank, false, layer)?;
        embeddings.push(pool(&activation)?.f_narrow(0, 0, 0)?);
        logits.push(out.f_narrow(0, 0, 0)?);
    }
    Ok(Embedded {
        embeddings: Tensor::f_cat(&embeddings, 0)?,
        labels: split.labels.f_narrow(0, 0, n)?.f_to_device(device)?,
        logits: Tensor::f_cat(&logits, 0)?,
    })
}

pub fn stage(ctx: &Context) -> Result<serde_json::Value> {
    let layer = ctx.text("layer")?;
    let batch = ctx.int("batch")?.max(1);
    let (net, input) = models::network_of(ctx, ctx.stage_name("of")?)?;
    let compute = Compute::of_stage(ctx)?;
    compute.prepare(&net)?;
    let data = Dataset::load(&ctx.upstream(ctx.stage_name("data")?)?.dir, ctx.device, input)?;
    let mut tensors = BTreeMap::new();
    let mut accuracy = serde_json::Map::new();
    let mut counts = serde_json::Map::new();
    let mut dim = 0;
    for (name, split) in &data.splits {
        let total = split.len();
        ctx.progress(match ctx.smoke() {
            Some(batches) => {
                let first = total.min(i64::try_from(batches).unwrap_or(i64::MAX).saturating_mul(batch));
                format!("embedding the first {first} of the {name} split's {total} images (smoke run)")
            }
            None => format!("embedding the {name} split ({total} images)"),
        });
        let e = embed_first(
            &net,
            split,
            layer,
            batch,
            ctx.smoke(),
            compute,
            &ctx.loop_progress(format!("embedding the {name} split: images")),
        )?;
        dim = e.embeddings.size().get(1).copied().unwrap_or(0);
        let correct = e.logits.f_argmax(-1, false)?.f_eq_tensor(&e.labels)?.f_sum(Kind::Int64)?.f_int64_value(&[])?;
        let rows = e.labels.size().first().copied().unwrap_or(0);
        accuracy.insert(name.clone(), serde_json::json!(correct as f64 / rows.max(1) as f64));
        counts.insert(name.clone(), serde_json::json!(rows));
        tensors.insert(format!("{name}.embeddings"), e.embeddings);
        tensors.insert(format!("{name}.labels"), e.labels);
        tensors.insert(format!("{name}.logits"), e.logits);
    }
    let metadata = BTreeMap::from([("format".to_owned(), "lthlang-embeddings-1".to_owned()), ("layer".to_owned(), layer.to_owned())]);
    checkpoint::save(&ctx.request.output.join(EMBEDDINGS_FILE), &tensors, &metadata)?;
    Ok(serde_json::json!({ "accuracy": accuracy, "images": counts, "dim": dim, "layer": layer, "precision": compute.precision.name() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn split(n: i64, size: i64) -> Split {
        tch::manual_seed(7);
        let images = Tensor::randint(256, [n, 3, size, size], (Kind::Uint8, Device::Cpu));
        let labels = Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(3);
        Split::in_memory(images, labels, Device::Cpu)
    }

    #[test]
    fn embed_pools_the_layer_and_is_the_same_in_any_batch_size() {
        let net = Network::build("resnet_tiny", 3, 8, 1, Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        let data = split(10, 16);
        let whole = embed_split(&net, &data, "layer3", 128).unwrap_or_else(|e| panic!("{e}"));
        let small = embed_split(&net, &data, "layer3", 3).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(whole.embeddings.size(), vec![10, 32]);
        assert_eq!(whole.logits.size(), vec![10, 3]);
        assert!(whole.embeddings.allclose(&small.embeddings, 1e-5, 1e-6, false));
        assert!(whole.logits.allclose(&small.logits, 1e-5, 1e-6, false));
        // resnet_tiny's head is avgpool + fc, so the logits follow from the layer3 embedding.
        let vars = net.variables();
        let head = whole.embeddings.matmul(&vars["fc.weight"].tr()) + &vars["fc.bias"];
        assert!(head.allclose(&whole.logits, 1e-4, 1e-5, false));
        // By hand for one image: the spatial mean of the activation.
        let (x, _) = data.batch(&Tensor::from_slice(&[4i64])).unwrap_or_else(|e| panic!("{e}"));
        let (_, a) = net.forward_with(&x, false, "layer3").unwrap_or_else(|e| panic!("{e}"));
        let mean = a.sum_dim_intlist(&[2i64, 3][..], false, Kind::Float) / 16.0;
        assert!(mean.allclose(&whole.embeddings.narrow(0, 4, 1), 1e-5, 1e-6, false));
    }

    #[test]
    fn embed_runs_in_eval_mode_and_leaves_batch_norm_statistics_alone() {
        let net = Network::build("resnet_tiny", 3, 8, 1, Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        let data = split(6, 16);
        let before = checkpoint::snapshot(&net.variables());
        let e = embed_split(&net, &data, "layer2", 4).unwrap_or_else(|e| panic!("{e}"));
        for (name, value) in net.variables() {
            assert!(value.equal(&before[&name]), "{name} changed");
        }
        let (x, _) = data.batch(&Tensor::arange(6, (Kind::Int64, Device::Cpu))).unwrap_or_else(|e| panic!("{e}"));
        let (_, train_mode) = net.forward_with(&x, true, "layer2").unwrap_or_else(|e| panic!("{e}"));
        assert!(!pool(&train_mode).unwrap_or_else(|e| panic!("{e}")).allclose(&e.embeddings, 1e-4, 1e-5, false));
        assert!(!e.embeddings.requires_grad());
    }

    #[test]
    fn embed_stage_writes_every_split_with_its_accuracy() {
        use crate::fixtures::{self, Workspace};
        use lthlang::check::Value;
        let fx = Workspace::with_trained_network(4);
        let fields = [
            ("of", Value::Stage("trained".into())),
            ("layer", Value::Str("layer3".into())),
            ("data", Value::Stage("data".into())),
            ("batch", Value::Int(4)),
        ];
        let request = fx.request("emb", lthlang::kinds::Category::Embed, "pooled", &fields);
        let metrics = fixtures::run_request(&request).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(metrics["dim"], 32);
        let stored = checkpoint::load(&request.output.join(EMBEDDINGS_FILE)).unwrap_or_else(|e| panic!("{e}"));
        for (split, n) in [("train", 12), ("val", 6), ("test", 10)] {
            assert_eq!(stored[&format!("{split}.embeddings")].size(), vec![n, 32]);
            assert_eq!(stored[&format!("{split}.logits")].size(), vec![n, 3]);
            let labels = &stored[&format!("{split}.labels")];
            assert_eq!(Vec::<i64>::try_from(labels).unwrap_or_default(), (0..n).map(|i| i % 3).collect::<Vec<_>>());
            let correct = stored[&format!("{split}.logits")].argmax(-1, false).eq_tensor(labels).sum(Kind::Double).double_value(&[]);
            assert_eq!(metrics["accuracy"][split].as_f64(), Some(correct / n as f64));
        }
    }

    #[test]
    fn embed_of_a_ticket_series_reads_this_rounds_checkpoint() {
        use crate::fixtures::{self, Workspace};
        use crate::models::WEIGHTS_FILE;
        use lthlang::check::Value;
        use lthlang::exec::job::Upstream;
        use lthlang::kinds::Category;
        let mut fx = Workspace::with_trained_network(5);
        // Two rounds of a prune stage with different weights; neither folder holds a spec, which
        // is found through `from` (the train stage) and its `model`.
        let mut rounds = Vec::new();
        for round in [1u32, 2] {
            let dir = fx.dir(&format!("tickets{round}"));
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
            let net = Network::build("resnet_tiny", 3, 8, 40 + u64::from(round), Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
            checkpoint::save(&dir.join(WEIGHTS_FILE), &net.variables(), &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}"));
            let fields = BTreeMap::from([("from".to_owned(), Value::Stage("trained".into()))]);
            fx.upstream.push(Upstream {
                id: format!("tickets[{round}]"),
                stage: "tickets".into(),
                category: Category::Prune,
                method: "imp".into(),
                round: Some(round),
                fields,
                dir,
            });
            rounds.push(net);
        }
        let fields = [
            ("of", Value::Stage("tickets".into())),
            ("layer", Value::Str("layer3".into())),
            ("data", Value::Stage("data".into())),
            ("batch", Value::Int(128)),
        ];
        let mut request = fx.request("emb", Category::Embed, "pooled", &fields);
        request.round = Some(2);
        fixtures::run_request(&request).unwrap_or_else(|e| panic!("{e}"));
        let stored = checkpoint::load(&request.output.join(EMBEDDINGS_FILE)).unwrap_or_else(|e| panic!("{e}"));
        let data = Dataset::load(&fx.dir("data"), Device::Cpu, crate::data::Normalisation::FIXED).unwrap_or_else(|e| panic!("{e}"));
        let expected =
            embed_split(&rounds[1], data.split("val").unwrap_or_else(|e| panic!("{e}")), "layer3", 128).unwrap_or_else(|e| panic!("{e}"));
        assert!(stored["val.logits"].allclose(&expected.logits, 1e-6, 1e-6, false));
        let other =
            embed_split(&rounds[0], data.split("val").unwrap_or_else(|e| panic!("{e}")), "layer3", 128).unwrap_or_else(|e| panic!("{e}"));
        assert!(!stored["val.logits"].allclose(&other.logits, 1e-3, 1e-3, false));
    }

    #[test]
    fn embed_of_an_empty_split_has_the_layer_width() {
        let net = Network::build("resnet_tiny", 3, 8, 1, Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        let e = embed_split(&net, &split(0, 16), "layer1", 8).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.embeddings.size(), vec![0, 8]);
        assert_eq!(e.logits.size(), vec![0, 3]);
    }
}
