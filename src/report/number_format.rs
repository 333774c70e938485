//! How the report writes numbers, in one place so that the tables, the plots' tick labels and the
//! test that every shown number is in `report.json` agree on it.

/// Weights remaining as a percentage with three significant digits, trailing zeros dropped:
/// 100%, 72.9%, 22.9%, 0.467%. The study names rounds this way.
pub fn weights(fraction: f64) -> String {
    let percent = fraction * 100.0;
    if !percent.is_finite() || percent <= 0.0 {
        return format!("{percent}%");
    }
    let magnitude = percent.abs().log10().floor() as i32;
    let decimals = (2 - magnitude).max(0) as usize;
    let text = format!("{percent:.decimals$}");
    format!("{}%", trim_zeros(&text))
}

/// An accuracy (a share in [0, 1]) as a percentage with one decimal: 97.0%.
pub fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// A similarity or ground-truth metric, or a concept weight: three decimals.
pub fn metric(value: f64) -> String {
    format!("{value:.3}")
}

pub fn optional_metric(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_string(), metric)
}

pub fn seconds(value: f64) -> String {
    format!("{value:.1} s")
}

fn trim_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_keep_three_significant_digits() {
        assert_eq!(weights(1.0), "100%");
        assert_eq!(weights(0.9), "90%");
        assert_eq!(weights(0.729), "72.9%");
        // 0.9^14, the study's last round, printed there as 22.9%.
        assert_eq!(weights(0.9_f64.powi(14)), "22.9%");
        assert_eq!(weights(0.6_f64.powi(4)), "13%");
        assert_eq!(weights(0.00467), "0.467%");
    }

    #[test]
    fn accuracies_and_metrics_have_fixed_decimals() {
        assert_eq!(percent(0.97), "97.0%");
        assert_eq!(percent(0.8483), "84.8%");
        assert_eq!(metric(-0.5), "-0.500");
        assert_eq!(optional_metric(None), "–");
        assert_eq!(seconds(12.345), "12.3 s");
    }
}
