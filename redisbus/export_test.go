package redisbus

// Eager has a Publisher's workers write at once what they found queued,
// as they did before they let ready goroutines queue more first.
func Eager() PublisherOption { return func(p *Publisher) { p.eager = true } }
