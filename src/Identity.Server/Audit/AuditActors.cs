using Identity.Core.Audit;

namespace Identity.Server.Audit;

/// <summary>The actor of a request nobody signed in to.</summary>
public static class AuditActors
{
    extension(Actor)
    {
        public static Actor Anonymous(HttpContext context) => Actor.Anonymous(context.Connection.RemoteIpAddress?.ToString());
    }
}
