"""Backend implementations, one module each. Import them through :mod:`lexperience.registry`
(or directly); each module imports its optional packages lazily and names the extra to install."""
