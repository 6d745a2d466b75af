"""Call flows against :class:`agi.channel.Channel`: lookup, closed/overflow, survey, status, jobno."""
