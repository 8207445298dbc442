//! chatrace-relay: receives Chatrace webhooks, stores them in SQLite, relays them onward.
