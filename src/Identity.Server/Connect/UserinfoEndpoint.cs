using Identity.Core.Data;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Connect;

/// <summary>
/// The userinfo endpoint (OpenID Connect Core §5.3), passed through by OpenIddict once it has validated the access token:
/// the claims <see cref="UserPrincipalFactory"/> gives the ID token for the token's scopes, about the token's subject.
/// </summary>
public static class UserinfoEndpoint
{
    public static IEndpointRouteBuilder MapUserinfo(this IEndpointRouteBuilder app)
    {
        app.MapMethods("/connect/userinfo", [HttpMethods.Get, HttpMethods.Post],
            [Authorize(AuthenticationSchemes = OpenIddictServerAspNetCoreDefaults.AuthenticationScheme)]
            async (HttpContext context, UserManager<ApplicationUser> users, UserPrincipalFactory claims) =>
            {
                var principal = context.User;
                var user = principal.GetClaim(Claims.Subject) is { } subject ? await users.FindByIdAsync(subject) : null;
                if (user is null)
                {
                    return Results.Challenge(authenticationSchemes: [OpenIddictServerAspNetCoreDefaults.AuthenticationScheme]);
                }

                return Results.Json(await claims.UserinfoAsync(user, principal.GetScopes(), context.RequestAborted));
            }).DisableAntiforgery();

        return app;
    }
}
