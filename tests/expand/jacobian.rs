// A function with several outputs: `_jacobian` (forward sweeps, one input
// for three outputs; reverse sweeps are emitted too) and `_jvp`.
#[differentiate(forward)]
pub fn helix(t: f64, pitch: f64) -> [f64; 3] {
    [t.cos(), t.sin(), pitch * t]
}
