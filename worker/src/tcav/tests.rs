use super::*;
use crate::fixtures::{self, Workspace};
use lthlang::kinds::Category;
use tch::Device;

fn ok<T>(r: Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap_or_default()
}

#[test]
fn tcav_pooled_gradient_sums_over_positions() {
    let g = Tensor::from_slice(&[1.0, 2.0, 3.0, 4.0, -1.0, 0.0, 0.5, 0.5]).reshape([1, 2, 2, 2]);
    assert_eq!(values(&ok(pooled_gradient(&g))), vec![10.0, 0.0]);
    let flat = Tensor::from_slice(&[1.0f32, -2.0]).reshape([1, 2]);
    assert_eq!(values(&ok(pooled_gradient(&flat))), vec![1.0, -2.0]);
}

#[test]
fn tcav_positive_share_counts_strictly_positive_rows() {
    let d = Tensor::from_slice(&[1.0, -1.0, 0.0, 2.0, -3.0, 0.5, 4.0, 1.0]).reshape([4, 2]);
    assert_eq!(ok(positive_share(&d)), vec![0.5, 0.75]);
    assert!(ok(positive_share(&Tensor::zeros([0, 2], (Kind::Double, Device::Cpu)))).iter().all(|x| x.is_nan()));
}

#[test]
fn tcav_random_directions_are_unit_and_repeatable() {
    let draw = |stream: u64| {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        rng.set_stream(stream);
        random_directions(12, 32, &mut rng)
    };
    let first = draw(0);
    assert_eq!(first.len(), 12);
    for v in &first {
        assert_eq!(v.len(), 32);
        assert!((v.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-12);
    }
    assert_eq!(first, draw(0));
    assert_ne!(first, draw(1));
}

#[test]
fn tcav_derivative_before_the_head_is_the_head_weight_along_v() {
    // resnet_tiny's layer3 is followed only by pooling and fc: S = W[c]·v for every image.
    let net = ok(Network::build("resnet_tiny", 4, 8, 2, Device::Cpu));
    tch::manual_seed(3);
    let x = Tensor::randn([5, 3, 16, 16], (Kind::Float, Device::Cpu));
    let directions = Tensor::randn([3, 32], (Kind::Double, Device::Cpu));
    let w = net.variables()["fc.weight"].to_kind(Kind::Double);
    for class in 0..4 {
        let got = ok(derivatives(&net, &x, "layer3", class, &directions));
        let want = w.get(class).unsqueeze(0).matmul(&directions.tr()).expand([5, 3], false);
        assert!((got - want).abs().max().double_value(&[]) < 1e-5);
    }
}

#[test]
fn tcav_derivative_matches_finite_differences_inside_the_network() {
    // At `layer2.0.conv1` (followed by batch norm in eval mode) moving every position of channel k
    // by ε v_k is the same as lowering bn1's running mean by ε v_k, so the derivative can be
    // checked against central differences of the whole network, in double precision.
    let mut net = ok(Network::build("resnet_tiny", 3, 8, 4, Device::Cpu));
    net.vs.double();
    tch::manual_seed(6);
    let x = Tensor::randn([3, 3, 16, 16], (Kind::Double, Device::Cpu));
    let v = Tensor::randn([1, 16], (Kind::Double, Device::Cpu));
    let class = 1;
    let got = values(&ok(derivatives(&net, &x, "layer2.0.conv1", class, &v)));
    let mean = net.variables()["layer2.0.bn1.running_mean"].shallow_clone();
    let original = mean.copy();
    let eps = 1e-6;
    let logit_after_shift = |shift: f64| {
        let _guard = tch::no_grad_guard();
        mean.shallow_clone().copy_(&(&original - v.squeeze_dim(0) * shift));
        values(&net.forward(&x, false).unwrap().select(1, class))
    };
    let (up, down) = (logit_after_shift(eps), logit_after_shift(-eps));
    tch::no_grad(|| mean.shallow_clone().copy_(&original));
    for i in 0..3 {
        let numeric = (up[i] - down[i]) / (2.0 * eps);
        assert!((got[i] - numeric).abs() < 1e-6 * (1.0 + numeric.abs()), "image {i}: {} vs {numeric}", got[i]);
    }
}

/// A concepts node at `layer3` whose directions are the head's row for class 0 and its negative.
fn bank(fx: &mut Workspace, layer: &str) -> Tensor {
    let embed =
        fx.request("emb", Category::Embed, "pooled", &[("layer", Value::Str(layer.into())), ("of", Value::Stage("trained".into()))]);
    fx.add_finished(&embed);
    let concepts = fx.request("bank", Category::Concepts, "annotated", &[("from", Value::Stage("emb".into()))]);
    let w0 = fx.network().variables()["fc.weight"].get(0);
    let directions = Tensor::stack(&[w0.shallow_clone(), -w0], 0);
    let tensors = BTreeMap::from([
        ("directions".to_owned(), directions.shallow_clone()),
        ("offsets".to_owned(), Tensor::zeros([2], (Kind::Float, Device::Cpu))),
    ]);
    ok(checkpoint::save(&concepts.output.join(CONCEPTS_FILE), &tensors, &BTreeMap::new()));
    std::fs::write(concepts.output.join(BANK_FILE), r#"{"method": "annotated", "names": ["toward", "away"]}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    fx.add_finished(&concepts);
    directions
}

fn tcav_request(fx: &Workspace, stage: &str, layer: &str) -> lthlang::exec::job::NodeRequest {
    fx.request(
        stage,
        Category::Explain,
        "tcav",
        &[
            ("of", Value::Stage("trained".into())),
            ("layer", Value::Str(layer.into())),
            ("concepts", Value::Stage("bank".into())),
            ("images", Value::Split { dataset: "data".into(), split: "test".into() }),
            ("classes", Value::List(vec![Value::Int(0), Value::Str("triangle".into())])),
            ("random", Value::Int(10)),
            ("alpha", Value::Fraction(0.05)),
            ("seed", Value::Int(0)),
        ],
    )
}

#[test]
fn tcav_stage_scores_classes_against_random_directions() {
    let mut fx = Workspace::with_trained_network(2);
    let directions = bank(&mut fx, "layer3");
    let request = tcav_request(&fx, "tcav", "layer3");
    let metrics = ok(fixtures::run_request(&request));
    let stored = ok(checkpoint::load(&request.output.join(TCAV_FILE)));
    assert_eq!(values(&stored["classes"]), vec![0.0, 2.0]);
    // The test split's labels are row mod 3: rows 0, 3, 6, 9 are class 0 and 2, 5, 8 class 2.
    assert_eq!(values(&stored["counts"]), vec![4.0, 3.0]);
    assert_eq!(values(&stored["indices"]), vec![0.0, 3.0, 6.0, 9.0, 2.0, 5.0, 8.0]);
    // Before the head S = W[c]·v for every image, so each score is 0 or 1: class 0 moves toward
    // its own row (W₀·W₀ > 0) and away from its negative.
    let w = fx.network().variables()["fc.weight"].shallow_clone();
    let scores = values(&stored["scores"]);
    assert_eq!(&scores[..2], &[1.0, 0.0]);
    let toward = (w.get(2) * directions.get(0)).sum(Kind::Double).double_value(&[]);
    assert_eq!(&scores[2..], if toward > 0.0 { &[1.0, 0.0] } else { &[0.0, 1.0] });
    // p-values are the t-test of each score against the stored random scores of its class.
    let random = values(&stored["random_scores"]);
    assert_eq!(random.len(), 20);
    assert!(random.iter().all(|s| *s == 0.0 || *s == 1.0));
    let p = values(&stored["p_values"]);
    for (row, class_random) in random.chunks(10).enumerate() {
        for concept in 0..2 {
            let want = ttest::student(&[scores[row * 2 + concept]], class_random).map_or(f64::NAN, |t| t.p);
            let got = p[row * 2 + concept];
            assert!((got - want).abs() < 1e-6 || (got.is_nan() && want.is_nan()), "{got} vs {want}");
        }
    }
    assert_eq!(metrics["classes"][1]["class"], "triangle");
    assert_eq!(metrics["concepts"][0], "toward");
    // The same node seed and `seed` field draw the same random directions.
    let again = tcav_request(&fx, "tcav_again", "layer3");
    ok(fixtures::run_request(&again));
    let stored_again = ok(checkpoint::load(&again.output.join(TCAV_FILE)));
    assert!(stored_again["random_directions"].equal(&stored["random_directions"]));
}

#[test]
fn tcav_stage_refuses_concepts_from_another_layer() {
    let mut fx = Workspace::with_trained_network(3);
    let _directions = bank(&mut fx, "layer3");
    let err = fixtures::run_request(&tcav_request(&fx, "tcav", "layer2")).err().map(|e| e.0).unwrap_or_default();
    assert!(err.contains("layer3"), "{err}");
}
