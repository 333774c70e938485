//! The HTML report in a real browser: headless Chromium (Debian's `chromium` package; the test
//! set-up, scripts/test.sh, installs it) opens the example report, takes a screenshot, and checks
//! that every figure and overlay rendered and that the page logged nothing.
//!
//! Two loads:
//! - the report as written, with its content policy (nothing may load, nothing may run): any
//!   console line at all fails, so a blocked load or script shows up here;
//! - a copy with a checking script added, the policy widened only to let that script run: it
//!   records errors from the start of the page, and after `load` writes into a `data-` attribute
//!   whether each `<img>` decoded and each `<svg>` has a box; `--dump-dom` prints it.

use lthlang::report::{example, html};
use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        if Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return PathBuf::from(name);
        }
    }
    panic!("chromium is not installed: scripts/test.sh installs it (apt-get install -y chromium); the report's browser test needs it");
}

/// A small heat map over a grey square, different per image and round, as a PNG.
fn overlay_png(node: &str, file: &str) -> Option<Vec<u8>> {
    let round: u32 = node.trim_start_matches("cam[").trim_end_matches(']').parse().ok()?;
    let index: u32 = file.trim_start_matches("overlays/").trim_end_matches(".png").parse().ok()?;
    let size = 32;
    let (cx, cy) = (8.0 + f64::from(index % 16), 10.0 + 4.0 * f64::from(round));
    let image = image::RgbImage::from_fn(size, size, |x, y| {
        let heat = (-((f64::from(x) - cx).powi(2) + (f64::from(y) - cy).powi(2)) / 40.0).exp();
        image::Rgb([(90.0 + 165.0 * heat) as u8, 90, (90.0 + 100.0 * (1.0 - heat)) as u8])
    });
    let mut bytes = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).ok()?;
    Some(bytes)
}

struct Browser {
    program: PathBuf,
    profile: tempfile::TempDir,
}

impl Browser {
    /// Runs headless Chromium on `page` with extra arguments; returns (stdout, stderr).
    fn open(&self, page: &Path, extra: &[&str]) -> (String, String) {
        let output = Command::new(&self.program)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", self.profile.path().display()))
            // Lets the load event and image decoding finish before the DOM is dumped.
            .arg("--virtual-time-budget=5000")
            .args(extra)
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("chromium runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "chromium failed ({}):\n{stderr}", output.status);
        (stdout, stderr)
    }
}

/// Console lines Chromium logged for the page (`INFO:CONSOLE`, whatever the message's level).
fn console_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

const CHECKER: &str = r#"<script>
(function () {
  var errors = [];
  var say = function (kind) { return function () { errors.push(kind + ': ' + Array.prototype.join.call(arguments, ' ')); }; };
  console.error = say('console.error');
  console.warn = say('console.warn');
  window.addEventListener('error', function (e) {
    errors.push('error: ' + (e.message || (e.target && (e.target.src || e.target.tagName)) || 'unknown'));
  }, true);
  window.addEventListener('securitypolicyviolation', function (e) { errors.push('blocked: ' + e.blockedURI + ' ' + e.violatedDirective); });
  window.addEventListener('unhandledrejection', function (e) { errors.push('rejection: ' + e.reason); });
  window.addEventListener('load', function () {
    var images = Array.prototype.slice.call(document.images);
    var svgs = Array.prototype.slice.call(document.querySelectorAll('svg'));
    // Shown, and decoded to the last pixel: the test's overlays are opaque, so any pixel left
    // transparent is one the browser could not decode (a truncated PNG still has a size).
    var whole = function (image) {
      if (!(image.complete && image.naturalWidth > 0 && image.getBoundingClientRect().width > 0)) return false;
      var canvas = document.createElement('canvas');
      canvas.width = image.naturalWidth;
      canvas.height = image.naturalHeight;
      var context = canvas.getContext('2d');
      context.drawImage(image, 0, 0);
      var pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
      for (var i = 3; i < pixels.length; i += 4) { if (pixels[i] !== 255) return false; }
      return true;
    };
    var drawn = function (svg) { var box = svg.getBoundingClientRect(); return box.width > 100 && box.height > 100 && svg.querySelectorAll('text').length > 5; };
    var result = {
      images: images.length,
      images_decoded: images.filter(whole).length,
      svgs: svgs.length,
      svgs_drawn: svgs.filter(drawn).length,
      errors: errors
    };
    document.documentElement.setAttribute('data-render-check', JSON.stringify(result));
  });
})();
</script>"#;

#[test]
fn the_report_renders_in_chromium_without_errors() {
    let browser = Browser { program: chromium(), profile: tempfile::tempdir().unwrap() };
    let folder = tempfile::tempdir().unwrap();
    let compare = example::compare();
    let page = html::render_html(&compare, &example::context(), &overlay_png);
    let report = folder.path().join("report.html");
    std::fs::write(&report, &page).unwrap();

    // The report as written: a screenshot, and not one console line.
    let screenshot = folder.path().join("report.png");
    let (_, stderr) = browser.open(&report, &[&format!("--screenshot={}", screenshot.display()), "--window-size=1280,4000"]);
    assert_eq!(console_lines(&stderr), Vec::<&str>::new(), "the report logged to the console");
    let shot = image::open(&screenshot).expect("chromium wrote a PNG screenshot").to_luma8();
    assert_eq!(shot.dimensions(), (1280, 4000));
    let pixels: Vec<f64> = shot.pixels().map(|p| f64::from(p.0[0])).collect();
    let mean = pixels.iter().sum::<f64>() / pixels.len() as f64;
    let variance = pixels.iter().map(|p| (p - mean).powi(2)).sum::<f64>() / pixels.len() as f64;
    // A blank page has variance 0; text, plots and overlays on white give far more.
    assert!(variance > 200.0, "the screenshot looks blank: mean {mean:.1}, variance {variance:.1}");
    if let Ok(keep) = std::env::var("LTHLANG_KEEP_REPORT") {
        std::fs::copy(&screenshot, Path::new(&keep).join("report.png")).unwrap();
        std::fs::copy(&report, Path::new(&keep).join("report.html")).unwrap();
    }

    // A copy with the checker as the first thing in <head>, so it sees every error from the start.
    let policy = format!("content=\"{}\"", html::CONTENT_POLICY);
    assert!(page.contains(&policy), "the report carries its content policy");
    let checked = page.replacen(&policy, &format!("content=\"{}; script-src 'unsafe-inline'\"", html::CONTENT_POLICY), 1).replacen(
        "<head>\n",
        &format!("<head>\n{CHECKER}\n"),
        1,
    );
    let checked_path = folder.path().join("checked.html");
    std::fs::write(&checked_path, checked).unwrap();
    let (dom, _) = browser.open(&checked_path, &["--dump-dom"]);
    let start = dom.find("data-render-check=\"").expect("the checking script ran and wrote its result") + "data-render-check=\"".len();
    let end = start + dom[start..].find('"').unwrap();
    let result: serde_json::Value =
        serde_json::from_str(&dom[start..end].replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
            .unwrap();

    let overlays: usize = compare.saliency.as_ref().unwrap().images.iter().map(|i| i.overlays.len()).sum();
    // Accuracy, concept consistency, fidelity, saliency consistency, localisation, faithfulness.
    let figures = 6;
    assert_eq!(result["images"], overlays, "{result}");
    assert_eq!(result["images_decoded"], overlays, "{result}");
    assert_eq!(result["svgs"], figures, "{result}");
    assert_eq!(result["svgs_drawn"], figures, "{result}");
    assert_eq!(result["errors"], serde_json::json!([]), "{result}");
}
