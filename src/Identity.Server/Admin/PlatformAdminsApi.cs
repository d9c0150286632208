namespace Identity.Server.Admin;

/// <summary>
/// Platform administrators (decision 0087), for platform administrators only (anyone else 403, as clients and keys):
/// <c>GET /admin/v1/platform-admins</c> lists them; <c>PUT …/{userId}</c> makes a person one, <c>DELETE …/{userId}</c>
/// no longer one (409 for the last active one). Both are idempotent and answer the person as they now stand. The rule
/// lives in <see cref="UserAdministration.SetPlatformAdminAsync"/>, which the console shares; this file translates HTTP.
/// </summary>
public static class PlatformAdminsApi
{
    public static RouteGroupBuilder MapPlatformAdminsApi(this RouteGroupBuilder admin)
    {
        var platformAdmins = admin.MapGroup("/platform-admins").WithTags("Platform administrators").AddEndpointFilter(async (invocation, next) =>
            invocation.HttpContext.Admin().IsPlatformAdmin ? await next(invocation) : AdminActorExtensions.PlatformOnly());
        platformAdmins.MapGet("/", ListAsync);
        platformAdmins.MapPut("/{userId:guid}", (string userId, HttpContext c, UserAdministration u) => SetAsync(userId, true, c, u));
        platformAdmins.MapDelete("/{userId:guid}", (string userId, HttpContext c, UserAdministration u) => SetAsync(userId, false, c, u));
        return admin;
    }

    private static async Task<IResult> ListAsync(HttpContext context, UserAdministration users) =>
        TypedResults.Ok(new Page<UserView>([.. (await users.ListPlatformAdminsAsync(context.RequestAborted)).Select(u => UserView.From(u))], null));

    private static async Task<IResult> SetAsync(string userId, bool platformAdmin, HttpContext context, UserAdministration users)
    {
        var user = await users.FindPersonAsync(context.Admin(), userId, context.RequestAborted);
        if (user is null)
        {
            return AdminHttp.NotFound("user");
        }

        var result = await users.SetPlatformAdminAsync(context.Admin(), user, platformAdmin, context.RequestAborted);
        if (!result.Succeeded)
        {
            return AdminHttp.Refused(result);
        }

        AdminHttp.SetETag(context.Response, user.Version);
        return TypedResults.Ok(UserView.From(user));
    }
}
