"""Generator families behind one interface (`bench.models.base.GenerativeModule`)."""
