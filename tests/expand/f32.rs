// f32 parameters: the gradient fields are f32 and constants keep f32 width.
#[differentiate]
pub fn softplus_norm(a: f32, b: f32) -> f32 {
    let r = a.hypot(b);
    softplus(r) + (a * 0.5).exp2()
}
