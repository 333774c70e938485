//! The convolution, batch norm and linear layers of the built-in architectures, run through tch's
//! fallible `f_` calls. tch's own `forward` methods panic on a libtorch error (a wrong shape, an
//! exhausted device); here the error comes back as a [`StageError`] that names its cause, so a
//! node fails with one line instead of a caught panic.
//!
//! Each layer wraps tch's module, which owns the variables under torchvision's names, and keeps
//! the geometry tch keeps private (its config fields are not readable from outside the crate).

use crate::Result;
use tch::nn;
use tch::Tensor;

/// A 2-d convolution with zero padding, no dilation and one group: every convolution the
/// built-in architectures use.
pub struct Conv {
    module: nn::Conv2D,
    stride: [i64; 2],
    padding: [i64; 2],
}

impl Conv {
    pub fn new(p: nn::Path<'_>, cin: i64, cout: i64, kernel: [i64; 2], config: nn::ConvConfigND<[i64; 2]>) -> Conv {
        debug_assert!(config.dilation == [1, 1] && config.groups == 1 && matches!(config.padding_mode, nn::PaddingMode::Zeros));
        let (stride, padding) = (config.stride, config.padding);
        Conv { module: nn::conv(p, cin, cout, kernel, config), stride, padding }
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_conv2d(&self.module.ws, self.module.bs.as_ref(), self.stride, self.padding, [1, 1], 1)?)
    }
}

/// 2-d batch norm: batch statistics (and running-statistics updates) in training, the running
/// statistics in evaluation.
pub struct Norm {
    module: nn::BatchNorm,
    eps: f64,
    momentum: f64,
    cudnn_enabled: bool,
}

impl Norm {
    pub fn new(p: nn::Path<'_>, channels: i64, config: nn::BatchNormConfig) -> Norm {
        let nn::BatchNormConfig { eps, momentum, cudnn_enabled, .. } = config;
        Norm { module: nn::batch_norm2d(p, channels, config), eps, momentum, cudnn_enabled }
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let m = &self.module;
        Ok(Tensor::f_batch_norm(
            x,
            m.ws.as_ref(),
            m.bs.as_ref(),
            Some(&m.running_mean),
            Some(&m.running_var),
            train,
            self.momentum,
            self.eps,
            self.cudnn_enabled,
        )?)
    }
}

/// A fully connected layer on `[batch, features]`.
pub struct Linear {
    module: nn::Linear,
}

impl Linear {
    pub fn new(p: nn::Path<'_>, cin: i64, cout: i64, config: nn::LinearConfig) -> Linear {
        Linear { module: nn::linear(p, cin, cout, config) }
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_linear(&self.module.ws, self.module.bs.as_ref())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{Module, ModuleT};
    use tch::{Device, Kind};

    fn same(a: &Tensor, b: &Tensor) -> bool {
        a.size() == b.size() && f64::try_from((a - b).abs().max()).unwrap_or(f64::NAN) == 0.0
    }

    /// The wrappers compute exactly what tch's own modules compute, in training (which also
    /// updates the running statistics) and in evaluation.
    #[test]
    fn layers_match_tch_modules() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let config = nn::ConvConfigND::<[i64; 2]> { stride: [2, 1], padding: [1, 0], ..Default::default() };
        let conv = Conv::new(vs.root() / "conv", 3, 5, [3, 2], config);
        let theirs = nn::conv(vs.root() / "copy", 3, 5, [3, 2], config);
        tch::no_grad(|| {
            theirs.ws.shallow_clone().copy_(&conv.module.ws);
            if let (Some(b), Some(ours)) = (&theirs.bs, &conv.module.bs) {
                b.shallow_clone().copy_(ours);
            }
        });
        let x = Tensor::randn([2, 3, 9, 7], (Kind::Float, Device::Cpu));
        let ours = conv.forward(&x).unwrap_or_else(|e| panic!("{e}"));
        assert!(same(&ours, &theirs.forward(&x)));

        let norm_config = nn::BatchNormConfig { eps: 1e-3, momentum: 0.3, ws_init: nn::Init::Const(1.5), ..Default::default() };
        let norm = Norm::new(vs.root() / "bn", 5, norm_config);
        let reference = nn::batch_norm2d(vs.root() / "bn_ref", 5, norm_config);
        for train in [true, true, false] {
            let a = norm.forward(&ours, train).unwrap_or_else(|e| panic!("{e}"));
            let b = reference.forward_t(&ours, train);
            assert!(same(&a, &b), "train = {train}");
        }
        assert!(same(&norm.module.running_var, &reference.running_var));

        let fc = Linear::new(vs.root() / "fc", 4, 2, Default::default());
        let flat = Tensor::randn([3, 4], (Kind::Float, Device::Cpu));
        assert!(same(&fc.forward(&flat).unwrap_or_else(|e| panic!("{e}")), &fc.module.forward(&flat)));
    }

    /// A shape libtorch rejects is an error naming the cause, not a panic.
    #[test]
    fn a_wrong_shape_is_an_error() {
        let vs = nn::VarStore::new(Device::Cpu);
        let conv = Conv::new(vs.root() / "conv", 3, 4, [3, 3], Default::default());
        let message = conv.forward(&Tensor::zeros([1, 2, 8, 8], (Kind::Float, Device::Cpu))).err().map(|e| e.0).unwrap_or_default();
        assert!(message.starts_with("libtorch:") && message.contains("channels"), "{message}");
        let fc = Linear::new(vs.root() / "fc", 4, 2, Default::default());
        assert!(fc.forward(&Tensor::zeros([1, 5], (Kind::Float, Device::Cpu))).is_err());
    }
}
