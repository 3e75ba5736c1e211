//! What a builder's `store(..)` takes: a store by value, or one already shared.

use std::sync::Arc;

use crate::store::TokenStore;

/// A [`TokenStore`] as a builder's `store(..)` takes it: any store by value
/// (`.store(MemoryStore::new())`), or one you keep a handle to, as an `Arc<S>` or an
/// `Arc<dyn TokenStore>` (`.store(store.clone())`). Sealed: implement [`TokenStore`] instead.
///
/// A store given by value is put in an `Arc` once; an `Arc` is kept as it is, so every
/// source built from it shares one store.
pub trait IntoTokenStore: sealed::Sealed {
    /// The store, shared.
    #[doc(hidden)]
    fn into_token_store(self) -> Arc<dyn TokenStore>;
}

mod sealed {
    pub trait Sealed {}
}

impl<S: TokenStore + 'static> sealed::Sealed for S {}
impl<S: TokenStore + 'static> IntoTokenStore for S {
    fn into_token_store(self) -> Arc<dyn TokenStore> {
        Arc::new(self)
    }
}

impl<S: TokenStore + 'static> sealed::Sealed for Arc<S> {}
impl<S: TokenStore + 'static> IntoTokenStore for Arc<S> {
    fn into_token_store(self) -> Arc<dyn TokenStore> {
        self
    }
}

impl sealed::Sealed for Arc<dyn TokenStore> {}
impl IntoTokenStore for Arc<dyn TokenStore> {
    fn into_token_store(self) -> Arc<dyn TokenStore> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn an_arc_is_kept_and_a_store_by_value_is_shared_once() {
        let shared: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
        let kept = shared.clone().into_token_store();
        assert!(Arc::ptr_eq(&shared, &kept));
        let typed = Arc::new(MemoryStore::new());
        let kept = typed.clone().into_token_store();
        assert!(std::ptr::addr_eq(Arc::as_ptr(&typed), Arc::as_ptr(&kept)));
        assert_eq!(Arc::strong_count(&MemoryStore::new().into_token_store()), 1);
    }
}
