using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// A client assertion that fails validation (wrong audience, expired, bad signature) is a failed client
/// authentication: RFC 7523 §3.2 and RFC 6749 §5.2 call for <c>invalid_client</c> (401 with WWW-Authenticate),
/// where OpenIddict answers some of these cases with <c>invalid_token</c>.
/// </summary>
public sealed class ClientAssertionErrors : IOpenIddictServerHandler<ApplyTokenResponseContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ApplyTokenResponseContext>()
            .UseSingletonHandler<ClientAssertionErrors>()
            // Before OpenIddict normalises the error: for a code or refresh grant it turns invalid_token into invalid_grant.
            .SetOrder(OpenIddictServerHandlers.Exchange.NormalizeErrorResponse.Descriptor.Order - 2_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ApplyTokenResponseContext context)
    {
        if (context.Response.Error == Errors.InvalidToken && !string.IsNullOrEmpty(context.Request?.ClientAssertion))
        {
            context.Response.Error = Errors.InvalidClient;
            context.Response.ErrorDescription = "The client assertion is invalid.";
            context.Response.ErrorUri = null;
        }

        return ValueTask.CompletedTask;
    }
}
