-- Version 6: deliveries to a target that is no longer a --forward-url can be ended (the
-- state 'ended' is added to the table's CHECK by `outbox::allow_ended_deliveries`), and
-- deleting deliveries no longer takes them out of the counts: retention deletes a message's
-- finished deliveries, but `delivery_counts` keeps counting every delivery ever made, as
-- every other figure of the stats does.
DROP TRIGGER deliveries_counted_delete;
