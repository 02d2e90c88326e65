"""The built-in contact store (table `contact` in the ctid database): the `contacts` CRM
adapter reads it; `ctid contacts ...` and the `contacts.*` bus ops manage it."""
