package redisbus

// QueuedOnly has a Publisher queue every publication for its worker, as it
// did before direct writes, so that a benchmark can weigh them.
func QueuedOnly() PublisherOption { return func(p *Publisher) { p.queuedOnly = true } }
