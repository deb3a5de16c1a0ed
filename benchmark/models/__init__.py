"""Model adapters: one small interface (`base.Adapter`), a lazy registry, and the adapters."""
