using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// Refuses an authorization request whose <c>response_type</c> names a response type twice (<c>code code</c>).
/// RFC 6749 §3.1.1 makes the parameter a list of distinct response types; OpenIddict compares it as a set, so accepts
/// <c>code code</c> as <c>code</c>, but then recognises no flow in it and no response mode for it, and the response
/// (code or error) could not be sent. Refused after validation, so the client and its redirect URI are known and the
/// error goes back to the client (§4.1.2.1) rather than being shown at Identity.
/// </summary>
public sealed class RejectRepeatedResponseTypes : IOpenIddictServerHandler<HandleAuthorizationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<HandleAuthorizationRequestContext>()
            .UseSingletonHandler<RejectRepeatedResponseTypes>()
            // First: before OpenIddict attaches the id_token_hint's principal and passes the request through.
            .SetOrder(OpenIddictServerHandlers.Authentication.AttachPrincipal.Descriptor.Order - 1_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(HandleAuthorizationRequestContext context)
    {
        var types = context.Request.ResponseType?.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? [];
        if (types.Length != types.Distinct(StringComparer.Ordinal).Count())
        {
            context.Reject(error: Errors.InvalidRequest, description: "The 'response_type' parameter names a response type more than once.");
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// An authorization response to a validated redirect URI whose response mode OpenIddict could not infer (a
/// <c>response_type</c> it recognises as no flow, refused by <see cref="RejectRepeatedResponseTypes"/>) goes in the
/// query, as every response of the code flow — the only flow Identity serves — does (RFC 6749 §4.1.2, §4.1.2.1).
/// Without it OpenIddict finds no handler to apply the response and throws.
/// </summary>
public sealed class DefaultToQueryResponseMode : IOpenIddictServerHandler<ApplyAuthorizationResponseContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ApplyAuthorizationResponseContext>()
            .UseSingletonHandler<DefaultToQueryResponseMode>()
            .SetOrder(OpenIddictServerHandlers.Authentication.InferResponseMode.Descriptor.Order + 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ApplyAuthorizationResponseContext context)
    {
        if (!string.IsNullOrEmpty(context.RedirectUri) && string.IsNullOrEmpty(context.ResponseMode))
        {
            context.ResponseMode = ResponseModes.Query;
        }

        return ValueTask.CompletedTask;
    }
}
