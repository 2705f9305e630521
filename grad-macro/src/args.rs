//! The arguments of `#[differentiate(...)]`.

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Ident, Path, Token};

/// What the attribute asked for.
#[derive(Default)]
pub struct Args {
    /// `wrt(a, b)`: the parameters to differentiate; `None` means every float parameter.
    pub wrt: Option<Vec<Ident>>,
    /// `crate = path`: where the runtime lives; `::grad` when absent.
    pub krate: Option<Path>,
    /// `forward`: emit `f_jvp`.
    pub forward: bool,
    /// `hvp`: emit `f_hvp`.
    pub hvp: bool,
    /// `hessian`: emit `f_hessian` (and `f_hvp`, which it calls).
    pub hessian: bool,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = Args::default();
        let mut errors: Option<syn::Error> = None;
        let mut push = |e: syn::Error| match &mut errors {
            Some(all) => all.combine(e),
            None => errors = Some(e),
        };
        while !input.is_empty() {
            let key: Ident = if input.peek(Token![crate]) {
                let kw: Token![crate] = input.parse()?;
                Ident::new("crate", kw.span)
            } else {
                input.parse()?
            };
            match key.to_string().as_str() {
                "wrt" => {
                    if !input.peek(syn::token::Paren) {
                        return Err(syn::Error::new(
                            key.span(),
                            "expected `wrt(x, y)`: list the parameters to differentiate in parentheses",
                        ));
                    }
                    let content;
                    syn::parenthesized!(content in input);
                    let names: Punctuated<Ident, Token![,]> =
                        content.parse_terminated(Ident::parse, Token![,])?;
                    if args.wrt.is_some() {
                        push(syn::Error::new(key.span(), "`wrt` is given twice; list every parameter in one `wrt(...)`"));
                    }
                    if names.is_empty() {
                        push(syn::Error::new(key.span(), "`wrt()` is empty; name at least one parameter, or omit `wrt` to differentiate every float parameter"));
                    }
                    args.wrt = Some(names.into_iter().collect());
                }
                "crate" => {
                    input.parse::<Token![=]>()?;
                    let path = if input.peek(syn::LitStr) {
                        input.parse::<syn::LitStr>()?.parse::<Path>()?
                    } else {
                        Path::parse_mod_style(input)?
                    };
                    args.krate = Some(path);
                }
                "forward" => {
                    if args.forward {
                        push(syn::Error::new(key.span(), "`forward` is given twice"));
                    }
                    args.forward = true;
                }
                "hvp" | "hessian" => {
                    let flag = if key == "hvp" {
                        &mut args.hvp
                    } else {
                        &mut args.hessian
                    };
                    if *flag {
                        push(syn::Error::new(key.span(), format!("`{key}` is given twice")));
                    }
                    *flag = true;
                }
                _ => push(syn::Error::new(
                    key.span(),
                    format!("unknown option `{key}`; expected `wrt(...)`, `crate = path`, `forward`, `hessian` or `hvp`"),
                )),
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        match errors {
            Some(e) => Err(e),
            None => Ok(args),
        }
    }
}
