//! The error collector: every unsupported construct of a function is pushed
//! here, and all of them are reported together in one build (serde_derive's
//! `Ctxt`).

use std::cell::RefCell;

use quote::ToTokens;

/// Collects spanned errors while the passes run.
#[derive(Default)]
pub struct Ctxt {
    errors: RefCell<Vec<syn::Error>>,
    /// A mistake rustc reports better itself on the unchanged function.
    deferred: std::cell::Cell<bool>,
}

impl Ctxt {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an error spanned on `tokens`.
    pub fn error_spanned_by(&self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.errors
            .borrow_mut()
            .push(syn::Error::new_spanned(tokens.into_token_stream(), message));
    }

    /// Records an error that syn already built.
    pub fn syn_error(&self, error: syn::Error) {
        self.errors.borrow_mut().push(error);
    }

    /// Gives up on the function without an error of our own: used where
    /// rustc reports the same mistake, on the function emitted unchanged,
    /// with a better message (a missing `else`, a wrong argument count), so
    /// that the user does not read it twice.
    pub fn defer_to_rustc(&self) {
        self.deferred.set(true);
    }

    /// A point to go back to with [`Ctxt::truncate`].
    pub fn mark(&self) -> usize {
        self.errors.borrow().len()
    }

    /// Forgets the errors recorded since `mark`: the code that produced them
    /// is being lowered again.
    pub fn truncate(&self, mark: usize) {
        self.errors.borrow_mut().truncate(mark);
    }

    pub fn has_errors(&self) -> bool {
        self.deferred.get() || !self.errors.borrow().is_empty()
    }

    /// All errors recorded so far, combined into one, or `Ok` if there are none.
    pub fn check(self) -> syn::Result<()> {
        let mut errors = self.errors.into_inner().into_iter();
        let Some(mut combined) = errors.next() else {
            return Ok(());
        };
        for error in errors {
            combined.combine(error);
        }
        Err(combined)
    }
}
