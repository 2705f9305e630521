//! The `chain!` pipeline: `chain!(w * x + b -> sigmoid -> bce(y))` means
//! `bce(sigmoid(w * x + b), y)`. The desugaring lives here once, for the
//! function-like `chain!` macro and for `#[differentiate]` bodies, which see
//! `chain!` unexpanded.

use proc_macro2::{TokenStream, TokenTree};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Token};

/// Splits the input at top-level `->` and nests the stages as calls.
pub fn desugar(input: TokenStream) -> syn::Result<Expr> {
    let mut segments: Vec<TokenStream> = vec![TokenStream::new()];
    let mut tokens = input.into_iter().peekable();
    while let Some(tt) = tokens.next() {
        if let TokenTree::Punct(p) = &tt {
            if p.as_char() == '-' && p.spacing() == proc_macro2::Spacing::Joint {
                if let Some(TokenTree::Punct(q)) = tokens.peek() {
                    if q.as_char() == '>' {
                        tokens.next();
                        segments.push(TokenStream::new());
                        continue;
                    }
                }
            }
        }
        if let Some(last) = segments.last_mut() {
            last.extend([tt]);
        }
    }
    let mut segments = segments.into_iter();
    let first = segments.next().unwrap_or_default();
    if first.is_empty() {
        return Err(syn::Error::new(
            proc_macro2::Span::call_site(),
            "`chain!` needs a starting value: `chain!(x -> f -> g(y))`",
        ));
    }
    let mut value: Expr = syn::parse2(first)?;
    for stage in segments {
        if stage.is_empty() {
            return Err(syn::Error::new(
                value.span(),
                "a `->` in `chain!` must be followed by a stage: a function (`sigmoid`) or a call with the remaining arguments (`bce(y)`)",
            ));
        }
        let stage: Expr = syn::parse2(stage)?;
        value = match stage {
            Expr::Path(func) => {
                let mut args = Punctuated::<Expr, Token![,]>::new();
                args.push(value);
                Expr::Call(syn::ExprCall {
                    attrs: vec![],
                    func: Box::new(Expr::Path(func)),
                    paren_token: Default::default(),
                    args,
                })
            }
            Expr::Call(mut call) => {
                call.args.insert(0, value);
                Expr::Call(call)
            }
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "a `chain!` stage must be a function path (`sigmoid`) or a call with the remaining arguments (`bce(y)`)",
                ))
            }
        };
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use quote::{quote, ToTokens};

    fn show(ts: proc_macro2::TokenStream) -> String {
        super::desugar(ts).unwrap().to_token_stream().to_string()
    }

    #[test]
    fn nests_stages_as_first_arguments() {
        assert_eq!(
            show(quote!(w * x + b -> sigmoid -> bce(y))),
            quote!(bce(sigmoid(w * x + b), y)).to_string()
        );
    }

    #[test]
    fn a_single_value_is_itself() {
        assert_eq!(show(quote!(x)), "x");
    }

    #[test]
    fn rejects_empty_stages_and_non_calls() {
        assert!(super::desugar(quote!(x ->)).is_err());
        assert!(super::desugar(quote!(x -> 1.0 + y)).is_err());
        assert!(super::desugar(quote!()).is_err());
    }
}
