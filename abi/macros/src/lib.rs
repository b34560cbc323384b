//! `export_variant!`: generates a variant library's `annvil_entry_v1` entry
//! point, its static descriptor and its slot tables. Used through the
//! re-export `annvil_abi::export_variant!`.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitStr, Token, Type};

/// One `key: value` entry of the macro input.
enum Entry {
    Name(LitStr),
    Version(Expr),
    Construction(Type),
    Search(Type),
    Refinement(Type),
    CForward(Ident),
}

impl Parse for Entry {
    fn parse(input: ParseStream<'_>) -> syn::Result<Entry> {
        let key: Ident = input.parse()?;
        input.parse::<Token![:]>()?;
        Ok(match key.to_string().as_str() {
            "name" => Entry::Name(input.parse()?),
            "version" => Entry::Version(input.parse()?),
            "construction" => Entry::Construction(input.parse()?),
            "search" => Entry::Search(input.parse()?),
            "refinement" => Entry::Refinement(input.parse()?),
            "c_entry" => Entry::CForward(input.parse()?),
            other => {
                return Err(syn::Error::new(
                    key.span(),
                    format!(
                        "unknown key `{other}`; expected name, version, construction, \
                         search, refinement or c_entry"
                    ),
                ));
            }
        })
    }
}

/// The validated macro input.
#[derive(Default)]
struct Spec {
    name: Option<LitStr>,
    version: Option<Expr>,
    construction: Option<Type>,
    search: Option<Type>,
    refinement: Option<Type>,
    c_entry: Option<Ident>,
}

impl Parse for Spec {
    fn parse(input: ParseStream<'_>) -> syn::Result<Spec> {
        let entries = Punctuated::<Entry, Token![,]>::parse_terminated(input)?;
        let mut spec = Spec::default();
        fn set<T>(slot: &mut Option<T>, value: T, key: &str, span: Span) -> syn::Result<()> {
            if slot.replace(value).is_some() {
                return Err(syn::Error::new(span, format!("`{key}` is given twice")));
            }
            Ok(())
        }
        for entry in entries {
            let span = input.span();
            match entry {
                Entry::Name(v) => set(&mut spec.name, v, "name", span)?,
                Entry::Version(v) => set(&mut spec.version, v, "version", span)?,
                Entry::Construction(v) => set(&mut spec.construction, v, "construction", span)?,
                Entry::Search(v) => set(&mut spec.search, v, "search", span)?,
                Entry::Refinement(v) => set(&mut spec.refinement, v, "refinement", span)?,
                Entry::CForward(v) => set(&mut spec.c_entry, v, "c_entry", span)?,
            }
        }
        spec.validate(input.span())?;
        Ok(spec)
    }
}

impl Spec {
    fn has_rust_slots(&self) -> bool {
        self.construction.is_some() || self.search.is_some() || self.refinement.is_some()
    }

    fn validate(&self, span: Span) -> syn::Result<()> {
        if let Some(c_entry) = &self.c_entry {
            if self.has_rust_slots() || self.name.is_some() || self.version.is_some() {
                return Err(syn::Error::new(
                    c_entry.span(),
                    "`c_entry` forwards to a C descriptor and takes no other key",
                ));
            }
            return Ok(());
        }
        let name = self
            .name
            .as_ref()
            .ok_or_else(|| syn::Error::new(span, "missing `name: \"...\"`"))?;
        let value = name.value();
        let valid = !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(syn::Error::new(
                name.span(),
                "a variant name is non-empty ASCII letters, digits, `-`, `_` or `.`",
            ));
        }
        if !self.has_rust_slots() {
            return Err(syn::Error::new(
                span,
                "give at least one of `construction`, `search`, `refinement`",
            ));
        }
        Ok(())
    }

    fn expand(&self) -> TokenStream2 {
        let abi = quote!(::annvil_abi);
        if let Some(symbol) = &self.c_entry {
            return quote! {
                const _: () = {
                    unsafe extern "C" {
                        fn #symbol() -> *const #abi::ffi::annvil_descriptor;
                    }
                    /// The annvil ABI v1 entry point, forwarded to the C descriptor.
                    #[unsafe(no_mangle)]
                    pub extern "C" fn annvil_entry_v1() -> *const #abi::ffi::annvil_descriptor {
                        // SAFETY: the C function takes no arguments and returns
                        // a pointer to its static descriptor (annvil.h).
                        unsafe { #symbol() }
                    }
                };
            };
        }
        let name = self.name.as_ref().map(LitStr::value).unwrap_or_default();
        let version = match &self.version {
            Some(v) => quote!(#v),
            None => quote!(env!("CARGO_PKG_VERSION")),
        };
        // Per filled slot: its table, and the `params` function serving the
        // slot trait's PARAMS from a lazily built static ParamTable.
        let table = |ty: &Option<Type>, slot: &str, ffi_ty: &str, ctor: &str, tr: &str| {
            let Some(ty) = ty else {
                return (quote!(), quote!(None));
            };
            let upper = slot.to_uppercase();
            let stat = Ident::new(&upper, Span::call_site());
            let params_stat = Ident::new(&format!("{upper}_PARAMS"), Span::call_site());
            let params_fn = Ident::new(&format!("{slot}_params"), Span::call_site());
            let ffi_ty = Ident::new(ffi_ty, Span::call_site());
            let ctor = Ident::new(ctor, Span::call_site());
            let tr = Ident::new(tr, Span::call_site());
            (
                quote! {
                    static #params_stat: #abi::export::ParamTable =
                        #abi::export::ParamTable::new(<#ty as #abi::#tr>::PARAMS);
                    unsafe extern "C" fn #params_fn(
                        count: *mut usize,
                    ) -> *const #abi::ffi::annvil_param_info {
                        // SAFETY: `count` is the host's out-pointer (annvil.h).
                        unsafe { #params_stat.export(count) }
                    }
                    static #stat: #abi::ffi::#ffi_ty = #abi::export::#ctor::<#ty>(#params_fn);
                },
                quote!(Some(&#stat)),
            )
        };
        let (c_static, c_ref) = table(
            &self.construction,
            "construction",
            "annvil_construction_v1",
            "construction_table",
            "Construction",
        );
        let (s_static, s_ref) = table(
            &self.search,
            "search",
            "annvil_search_v1",
            "search_table",
            "Search",
        );
        let (r_static, r_ref) = table(
            &self.refinement,
            "refinement",
            "annvil_refinement_v1",
            "refinement_table",
            "Refine",
        );
        let flags = match &self.search {
            Some(ty) => quote!(#abi::export::search_flags::<#ty>()),
            None => quote!(0),
        };
        let name_nul = format!("{name}\0");
        quote! {
            const _: () = {
                #c_static
                #s_static
                #r_static
                static DESCRIPTOR: #abi::export::StaticDescriptor = #abi::export::StaticDescriptor::new(
                    #abi::export::c_str(#name_nul),
                    #abi::export::c_str(concat!(#version, "\0")),
                    #flags,
                    #c_ref,
                    #s_ref,
                    #r_ref,
                );
                /// The annvil ABI v1 entry point of this variant library.
                #[unsafe(no_mangle)]
                pub extern "C" fn annvil_entry_v1() -> *const #abi::ffi::annvil_descriptor {
                    DESCRIPTOR.as_ptr()
                }
            };
        }
    }
}

/// Generates `annvil_entry_v1` for a variant library; see the re-export in
/// `annvil_abi` for the accepted keys.
#[proc_macro]
pub fn export_variant(input: TokenStream) -> TokenStream {
    match syn::parse::<Spec>(input) {
        Ok(spec) => spec.expand().into(),
        Err(e) => e.to_compile_error().into(),
    }
}
