using Identity.Server.Telemetry;
using OpenIddict.Server;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// Counts every token response once, by its final outcome (<see cref="AuthorityMetrics"/>): issued, tagged with the grant
/// type and the client that authenticated, or refused, tagged with the error code as the client receives it. A refused
/// request carries no client tag: its client_id is whatever the caller wrote, and each new value would be a new series.
/// </summary>
public sealed class TokenOutcomeMetrics(AuthorityMetrics metrics) : IOpenIddictServerHandler<ApplyTokenResponseContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ApplyTokenResponseContext>()
            .UseSingletonHandler<TokenOutcomeMetrics>()
            // After OpenIddict normalised the error (the code the client sees), before the response is written.
            .SetOrder(OpenIddictServerHandlers.Exchange.NormalizeErrorResponse.Descriptor.Order + 250)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ApplyTokenResponseContext context)
    {
        if (context.Response.Error is { Length: > 0 } error)
        {
            metrics.TokenRefused(error);
        }
        else
        {
            metrics.TokenIssued(context.Request?.GrantType, context.Request?.ClientId);
        }

        return ValueTask.CompletedTask;
    }
}
