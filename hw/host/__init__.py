"""Host bridge: a UART link carrying a framed protocol onto an on-chip register/memory bus."""
