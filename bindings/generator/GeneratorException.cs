namespace ExpertBridge.Bindings.Generator;

/// <summary>A mistake in a manifest, a settings file or the command line; the message names the input and the rule.</summary>
public sealed class GeneratorException : Exception
{
    public GeneratorException(string message) : base(message) { }

    public GeneratorException() { }

    public GeneratorException(string message, Exception innerException) : base(message, innerException) { }
}
