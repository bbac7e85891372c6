"""salesflow's builtin plugins: storage backends, call sources and the default authorization policy."""
