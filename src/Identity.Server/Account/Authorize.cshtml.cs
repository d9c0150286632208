using System.Collections.Immutable;
using Identity.Core.Data;
using Identity.Core.Policies;
using Identity.Server.Connect;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Account;

/// <summary>
/// The authorization endpoint (OpenID Connect Core §3.1.2) once OpenIddict has validated the request
/// (client, exact redirect URI, PKCE S256, response type): decides whether the person must sign in
/// (no session, <c>prompt=login</c>, <c>max_age</c> exceeded), whether consent is needed, and issues the code.
/// </summary>
public sealed class AuthorizeModel(
    IOpenIddictApplicationManager applications,
    IOpenIddictAuthorizationManager authorizations,
    UserManager<ApplicationUser> users,
    UserPrincipalFactory principals,
    SignInManager<ApplicationUser> signIn,
    Mfa.SecondFactors factors,
    AccountPolicies policies,
    ScopeCatalog catalog,
    Identity.Server.Audit.IAuditTrail audit,
    AuthorityDbContext db,
    CodeIssuanceBatch codeIssuance,
    TimeProvider time) : PageModel
{
    public string ClientName { get; private set; } = "";

    public IReadOnlyList<string> Scopes { get; private set; } = [];

    public IReadOnlyList<KeyValuePair<string, string>> Parameters { get; private set; } = [];

    public Task<IActionResult> OnGetAsync() => AuthorizeAsync(decision: null);

    public Task<IActionResult> OnPostAsync([FromForm] string? decision) => AuthorizeAsync(decision);

    private async Task<IActionResult> AuthorizeAsync(string? decision)
    {
        var request = HttpContext.GetOpenIddictServerRequest()
            ?? throw new InvalidOperationException("The OpenID Connect request cannot be retrieved.");

        var session = await HttpContext.AuthenticateAsync(IdentityConstants.ApplicationScheme);
        var user = session.Succeeded ? await users.GetUserAsync(session.Principal) : null;
        if (user is not null && !await signIn.CanSignInAsync(user))
        {
            // Disabled since the session began (or the account was suspended): the session ends here.
            await signIn.SignOutAsync();
            user = null;
        }

        if (user is null || session.Principal is null || MustSignInAgain(request, session.Principal))
        {
            // §3.1.2.6: with prompt=none the client asked for no UI at all.
            if (request.HasPromptValue(PromptValues.None))
            {
                return Refuse(Errors.LoginRequired, "The user must sign in.");
            }

            return Challenge(new AuthenticationProperties { RedirectUri = ReturnUrlWithout(OpenIddictConstants.Parameters.Prompt) },
                IdentityConstants.ApplicationScheme);
        }

        // A second factor is needed when the client asks for it (acr_values, OpenID Connect Core §3.1.2.1: step-up) or
        // the account's policy requires it for this user; no code is issued before — enrolment first if there is none.
        var policy = await policies.ForAsync(user, HttpContext.RequestAborted);
        if (!policy.IpAllowList.Allows(HttpContext.Connection.RemoteIpAddress))
        {
            await signIn.SignOutAsync();
            return Challenge(new AuthenticationProperties { RedirectUri = ReturnUrlWithout(OpenIddictConstants.Parameters.Prompt) },
                IdentityConstants.ApplicationScheme);
        }

        var mfaRequired = request.GetAcrValues().Contains(SessionClaims.AcrMultiFactor)
            || Identity.Core.Policies.MfaRules.IsRequired(policy.Mfa, user.Role);
        if (mfaRequired && !session.Principal.IsMultiFactor())
        {
            if (request.HasPromptValue(PromptValues.None))
            {
                return Refuse(Errors.InteractionRequired, "A second factor is required.");
            }

            var back = ReturnUrlWithout(OpenIddictConstants.Parameters.Prompt);
            if (!await factors.HasAnyFactorAsync(user))
            {
                // Enrolment first, with a factor the account allows (TOTP unless only passkeys are).
                return RedirectToPage(policy.Mfa.Allows(MfaFactor.Totp) ? "/Totp" : "/Passkeys", new { ReturnUrl = back });
            }

            await Mfa.SecondFactors.BeginSecondStepAsync(HttpContext, user.Id);
            return RedirectToPage("/TwoFactor", new { ReturnUrl = back });
        }

        // The account's password.maximumAge: a sign-in with an expired password gets no code before the password is
        // changed; the change-password page then comes back here.
        if (session.Principal.UsedPassword() && AccountPolicies.IsPasswordExpired(user, policy, time.GetUtcNow()))
        {
            if (request.HasPromptValue(PromptValues.None))
            {
                return Refuse(Errors.InteractionRequired, "The password has expired and must be changed.");
            }

            audit.Record(new Identity.Server.Audit.Actor("user", user.Id, null, HttpContext.Connection.RemoteIpAddress?.ToString()),
                "user.password_expired_forced_change", "user", user.Id, user.AccountId, new { client = request.ClientId });
            await db.SaveChangesAsync(HttpContext.RequestAborted);
            return RedirectToPage("/Password", new { ReturnUrl = ReturnUrlWithout(OpenIddictConstants.Parameters.Prompt) });
        }

        var application = await applications.FindByClientIdAsync(request.ClientId!)
            ?? throw new InvalidOperationException("The client application cannot be found.");
        var applicationId = await applications.GetIdAsync(application);
        var subject = await users.GetUserIdAsync(user);
        var scopes = request.GetScopes();

        if (await applications.HasConsentTypeAsync(application, ConsentTypes.Explicit))
        {
            if (decision == "deny")
            {
                return Refuse(Errors.AccessDenied, "The user denied the request.");
            }

            if (decision == "allow")
            {
                // Remembered consent: a permanent authorization, revocable by the user or an admin.
                await authorizations.CreateAsync(
                    await principals.CreateAsync(user, session.Principal, scopes, [], null),
                    subject, applicationId!, AuthorizationTypes.Permanent, scopes);
            }
            else if (request.HasPromptValue(PromptValues.Consent) || !await HasConsentAsync(subject, applicationId!, scopes))
            {
                if (request.HasPromptValue(PromptValues.None))
                {
                    return Refuse(Errors.ConsentRequired, "The user must consent.");
                }

                ClientName = await applications.GetLocalizedDisplayNameAsync(application) ?? request.ClientId!;
                Scopes = scopes;
                Parameters = request.GetParameters()
                    .Where(p => p.Key != "decision" && p.Key != "__RequestVerificationToken")
                    .Select(p => new KeyValuePair<string, string>(p.Key, p.Value.ToString() ?? ""))
                    .ToList();
                return Page();
            }
        }

        // An ad-hoc authorization per code ties the code, its tokens and refresh tokens together, so a replayed
        // code or refresh token revokes exactly that chain (RFC 6749 §4.1.2, §10.5; RFC 9700 §4.14.2).
        // The authorization and the code's token entry are written together when the code is issued (CodeIssuanceBatch).
        var resources = await ResourcesOfAsync(scopes);
        var principal = await principals.CreateAsync(user, session.Principal, scopes, resources, null);
        codeIssuance.Begin();
        var authorization = await authorizations.CreateAsync(principal, subject, applicationId!, AuthorizationTypes.AdHoc, scopes);
        principal = await principals.CreateAsync(user, session.Principal, scopes, resources, await authorizations.GetIdAsync(authorization));

        return SignIn(principal, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    /// <summary><c>prompt=login</c>, or a session older than <c>max_age</c> (§3.1.2.1), needs a fresh sign-in.</summary>
    private bool MustSignInAgain(OpenIddictRequest request, System.Security.Claims.ClaimsPrincipal session)
    {
        if (request.HasPromptValue(PromptValues.Login))
        {
            return true;
        }

        return request.MaxAge is { } maxAge
            && (session.GetAuthTime() is not { } authTime || time.GetUtcNow() > authTime.AddSeconds(maxAge));
    }

    private async Task<bool> HasConsentAsync(string subject, string applicationId, ImmutableArray<string> scopes)
    {
        await foreach (var _ in authorizations.FindAsync(subject, applicationId, Statuses.Valid, AuthorizationTypes.Permanent, scopes))
        {
            return true;
        }

        return false;
    }

    private async Task<ImmutableArray<string>> ResourcesOfAsync(ImmutableArray<string> scopes)
    {
        var known = await catalog.GetAsync(HttpContext.RequestAborted);
        return [.. scopes.SelectMany(s => known.TryGetValue(s, out var r) ? r : []).Distinct(StringComparer.Ordinal)];
    }

    /// <summary>
    /// The same authorization request without <paramref name="parameter"/>: after signing in, the person comes back
    /// here and must not be asked again (prompt=login would otherwise loop).
    /// </summary>
    private string ReturnUrlWithout(string parameter)
    {
        var source = Request.HasFormContentType ? Request.Form.AsEnumerable() : Request.Query.AsEnumerable();
        var kept = source.Where(p => p.Key != parameter && p.Key != "decision" && p.Key != "__RequestVerificationToken")
            .SelectMany(p => p.Value.Select(v => new KeyValuePair<string, string?>(p.Key, v)));
        return Request.PathBase + Request.Path + QueryString.Create(kept);
    }

    private ForbidResult Refuse(string error, string description) => Forbid(
        new AuthenticationProperties(new Dictionary<string, string?>
        {
            [OpenIddictServerAspNetCoreConstants.Properties.Error] = error,
            [OpenIddictServerAspNetCoreConstants.Properties.ErrorDescription] = description,
        }),
        OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
}
