using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// Makes the discovery document say exactly what the server does (OpenID Connect Discovery 1.0 §3):
/// ID tokens are only ever signed RS256 (<see cref="TokenSigningPolicy"/>), and account selection is not offered.
/// </summary>
public sealed class DiscoveryMetadata : IOpenIddictServerHandler<HandleConfigurationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<HandleConfigurationRequestContext>()
            .UseSingletonHandler<DiscoveryMetadata>()
            .SetOrder(OpenIddictServerHandlers.Discovery.AttachAdditionalMetadata.Descriptor.Order + 1_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(HandleConfigurationRequestContext context)
    {
        context.IdTokenSigningAlgorithms.Clear();
        context.IdTokenSigningAlgorithms.Add(Algorithms.RsaSha256);
        context.PromptValues.Remove(PromptValues.SelectAccount);
        return ValueTask.CompletedTask;
    }
}
