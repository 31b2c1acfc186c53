using ExpertBridge.Bindings.Generator;

return GeneratorCli.Run(args, Console.Out, Console.Error);
